"""Read tasks: independent, picklable units of reading that Ray Data maps over.

``plan_read_tasks`` runs on the driver and touches only file sizes and Parquet footers.
Every task is a plain dict with the same keys (``TASK_KEYS``; unused ones are None) so that a
list of tasks also survives ``ray.data.from_items`` as one uniform Arrow struct column:

* ``jsonl`` / ``ndjson``: byte range ``[start, end)`` of about ``chunk_bytes``; the task owns
  the lines that start in it. ``newlines_before`` (newlines in ``[0, start)``) is known for the
  first chunk; for later ones the task counts them itself unless :func:`number_line_tasks`
  filled them in from a parallel :func:`count_task_newlines` pass.
* ``parquet``: one row group (``row_group``, ``row_offset`` = rows before it, ``num_rows``), or
  ``row_group`` None for the whole file (an empty or unreadable footer).
* ``csv``, ``json``, ``txt``, ``fhir_binary`` (a FHIR export's Binary NDJSON): the whole file.

``read_task`` never raises for bad data: every physical record becomes one row (``ok`` or
``quarantined``), and ``count_physical_records(task)`` says how many rows that is without
validating anything. A task whose file cannot be opened (deleted, no permission) gives one
quarantined row located ``path``; count_physical_records then says 1 as well.
"""

from __future__ import annotations

from typing import Any, Iterator

import pandas as pd

from clinitune.curate.readers import binaryfile, bundle, csvfile, jsonlines, parquetfile, textfile
from clinitune.curate.readers.config import ReaderConfig
from clinitune.curate.readers.discover import InputFile
from clinitune.curate.readers.records import RawRecord, empty_frame, file_tag, quarantined, records_to_frame
from clinitune.schema import Q_MALFORMED

TASK_KEYS = ("format", "path", "root", "size", "start", "end", "newlines_before", "row_group", "row_offset", "num_rows")
_READERS = {
    "jsonl": jsonlines, "ndjson": jsonlines, "csv": csvfile, "parquet": parquetfile, "json": bundle, "txt": textfile,
    "fhir_binary": binaryfile,
}


def _task(f: InputFile, **fields: Any) -> dict[str, Any]:
    task: dict[str, Any] = dict.fromkeys(TASK_KEYS)
    task.update(format=f.format, path=f.path, root=f.root or None, size=f.size, **fields)
    return task


def _parquet_tasks(f: InputFile) -> list[dict[str, Any]]:
    try:
        meta = parquetfile.open_file(f.path).metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    except Exception:  # noqa: BLE001 - read_task turns the unreadable file into a quarantine row
        return [_task(f)]
    if not sizes:
        return [_task(f, num_rows=0)]
    tasks, offset = [], 0
    for i, n in enumerate(sizes):
        tasks.append(_task(f, row_group=i, row_offset=offset, num_rows=n))
        offset += n
    return tasks


def plan_read_tasks(files: list[InputFile], cfg: ReaderConfig) -> list[dict[str, Any]]:
    """Split files into independent read tasks, in file order then position order."""
    tasks: list[dict[str, Any]] = []
    for f in files:
        if f.format in ("jsonl", "ndjson"):
            starts = range(0, f.size, cfg.chunk_bytes) or range(1)
            for start in starts:
                tasks.append(_task(f, start=start, end=min(start + cfg.chunk_bytes, f.size), newlines_before=0 if start == 0 else None))
        elif f.format == "parquet":
            tasks.extend(_parquet_tasks(f))
        elif f.format in _READERS:
            tasks.append(_task(f))
        else:
            raise ValueError(f"no reader for format {f.format!r}")
    return tasks


def _reader(task: dict[str, Any]):
    try:
        return _READERS[task["format"]]
    except KeyError:
        raise ValueError(f"read task has unknown format {task.get('format')!r}") from None


def iter_raw_records(task: dict[str, Any], cfg: ReaderConfig) -> Iterator[RawRecord]:
    """The task's records before validation; an unreadable file becomes one quarantined record."""
    reader = _reader(task)
    path = task["path"]
    n = 0
    try:
        for rec in reader.iter_records(task, cfg):
            n += 1
            yield rec
    except OSError as err:
        after = f" after {n} record(s)" if n else ""
        yield quarantined(path, f"{file_tag(path)}-X", Q_MALFORMED, f"file cannot be read ({type(err).__name__}){after}")


def iter_read_task(task: dict[str, Any], cfg: ReaderConfig, batch_rows: int = 4096) -> Iterator[pd.DataFrame]:
    """``read_task`` in frames of at most ``batch_rows`` rows (bounded memory for big row groups/CSVs)."""
    batch: list[RawRecord] = []
    for rec in iter_raw_records(task, cfg):
        batch.append(rec)
        if len(batch) >= batch_rows:
            yield records_to_frame(batch, cfg, task["path"])
            batch = []
    if batch:
        yield records_to_frame(batch, cfg, task["path"])


def read_task(task: dict[str, Any], cfg: ReaderConfig) -> pd.DataFrame:
    """All rows of one task: columns exactly ``schema.RECORD_SCHEMA.names``, one row per record."""
    return records_to_frame(iter_raw_records(task, cfg), cfg, task["path"]) if task else empty_frame()


def count_physical_records(task: dict[str, Any], cfg: ReaderConfig | None = None) -> int:
    """How many rows ``read_task(task)`` yields, counted without validation (see each format)."""
    cfg = cfg or ReaderConfig()
    reader = _reader(task)
    try:
        return reader.count_records(task, cfg)
    except OSError:
        return 1


def count_task_newlines(task: dict[str, Any]) -> int:
    """Newlines in a line task's byte range ``[start, end)`` (the parallel pre-pass)."""
    with open(task["path"], "rb") as f:
        return jsonlines.count_newlines(f, int(task["start"]), int(task["end"]))


def number_line_tasks(tasks: list[dict[str, Any]], newline_counts: list[int | None]) -> list[dict[str, Any]]:
    """Fill ``newlines_before`` of line tasks from per-task newline counts (same order as tasks).

    Lets a pipeline number lines in linear total time: map ``count_task_newlines`` over the
    tasks in parallel, then call this on the driver. Other tasks pass through unchanged.
    """
    out = [dict(t) for t in tasks]
    counts = list(newline_counts)
    if len(counts) != len(out):
        raise ValueError("need one newline count per task")
    by_file: dict[str, list[int]] = {}
    for i, task in enumerate(out):
        if task["format"] in ("jsonl", "ndjson"):
            by_file.setdefault(task["path"], []).append(i)
    for indices in by_file.values():
        running = 0
        for i in sorted(indices, key=lambda j: int(out[j]["start"])):
            out[i]["newlines_before"] = running
            running += int(counts[i])
    return out
