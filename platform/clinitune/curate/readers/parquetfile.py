"""Parquet files, one task per row group (``row_group`` None: the whole file).

Only the mapped and passthrough columns are read (names matched exactly, then
case-insensitively). Rows are located ``path:row N``, N counting from 1 over the whole file.
A file whose footer cannot be read is one quarantined record located ``path``; a row group or
batch that cannot be decoded quarantines each of its rows (its size is known from the footer),
so the row count always equals the footer's.
"""

from __future__ import annotations

from typing import Any, Iterator

from clinitune.curate.readers.config import ReaderConfig
from clinitune.curate.readers.records import RawRecord, file_tag, map_source_record, quarantined
from clinitune.schema import Q_MALFORMED

_BATCH_ROWS = 1024


def open_file(path: str):
    import pyarrow.parquet as pq

    return pq.ParquetFile(path)


def _columns(pf, cfg: ReaderConfig) -> list[str]:
    mapping = cfg.resolved_mapping()
    wanted = {n.lower() for n in [*mapping.values(), *mapping.keys(), *cfg.passthrough_fields]}
    return [n for n in dict.fromkeys(pf.schema_arrow.names) if n.lower() in wanted]


def _row_groups(task: dict[str, Any], pf) -> list[tuple[int, int]]:
    """(row group index, row offset) pairs of the task."""
    if task.get("row_group") is not None:
        return [(int(task["row_group"]), int(task.get("row_offset") or 0))]
    out, offset = [], 0
    for i in range(pf.metadata.num_row_groups):
        out.append((i, offset))
        offset += pf.metadata.row_group(i).num_rows
    return out


def iter_records(task: dict[str, Any], cfg: ReaderConfig) -> Iterator[RawRecord]:
    path = task["path"]
    tag, mapping = file_tag(path), cfg.resolved_mapping()

    def bad_rows(first: int, n: int, detail: str) -> Iterator[RawRecord]:
        for r in range(first, first + n):
            yield quarantined(f"{path}:row {r}", f"{tag}-R{r}", Q_MALFORMED, detail)

    try:
        pf = open_file(path)
        groups = _row_groups(task, pf)
        columns = _columns(pf, cfg)
    except Exception as err:  # noqa: BLE001 - any corruption in a user's file is data, not a bug
        yield quarantined(path, f"{tag}-R", Q_MALFORMED, f"file cannot be read as Parquet ({type(err).__name__})")
        return
    for group, offset in groups:
        row = offset + 1
        try:
            table = pf.read_row_group(group, columns=columns)
        except Exception as err:  # noqa: BLE001
            yield from bad_rows(row, pf.metadata.row_group(group).num_rows, f"row group {group} cannot be decoded ({type(err).__name__})")
            continue
        if table.num_columns == 0:  # none of the mapped columns exist: every row lacks them
            for _ in range(table.num_rows):
                yield RawRecord(f"{path}:row {row}", f"{tag}-R{row}", {}, {}, mapping)
                row += 1
            continue
        for batch in table.to_batches(max_chunksize=_BATCH_ROWS):
            try:
                records = batch.to_pylist()
            except Exception as err:  # noqa: BLE001
                yield from bad_rows(row, batch.num_rows, f"row group {group} cannot be converted ({type(err).__name__})")
                row += batch.num_rows
                continue
            for rec in records:
                fields, attrs = map_source_record(rec, mapping, cfg.passthrough_fields)
                yield RawRecord(f"{path}:row {row}", f"{tag}-R{row}", fields, attrs, mapping)
                row += 1


def count_records(task: dict[str, Any], cfg: ReaderConfig) -> int:
    try:
        pf = open_file(task["path"])
        if task.get("row_group") is not None:
            return pf.metadata.row_group(int(task["row_group"])).num_rows
        return pf.metadata.num_rows
    except Exception:  # noqa: BLE001 - an unreadable file is one quarantined record
        return 1
