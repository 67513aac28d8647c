"""Note ids must be unique: later records that repeat a live note's id are quarantined.

Everything downstream keys on ``note_id`` — dedup's survivor choice and join, the dropped-record
index, training example ids, evaluation samples and canaries — so two different records under one
id would be confused with each other (dedup would mark both, or neither). Input files from
several systems, or one export appended twice, repeat ids; validation cannot see it row by row.

Among live rows, ids are hash-partitioned (only ``note_id`` and ``location`` travel); in each
group of one id the record at the first location (file, then the numbers in it compared as
numbers, so ``notes.jsonl:9`` comes before ``notes.jsonl:10``) stays, and every other record is
quarantined with reason ``duplicate_note_id`` and a detail naming where the kept record is (file
and line, never text). A corpus without repeats costs one small shuffle and no join.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from clinitune.schema import (DETAIL_COLUMN, LOCATION_COLUMN, Q_DUPLICATE_NOTE_ID, REASON_COLUMN, STATUS_COLUMN,
                              STATUS_OK, STATUS_QUARANTINED)

if TYPE_CHECKING:  # pragma: no cover
    import ray.data

REPEAT_OF = "_repeat_of"
_SCHEMA = pa.schema([("note_id", pa.string()), (LOCATION_COLUMN, pa.string()), (REPEAT_OF, pa.string())])
_DIGITS = re.compile(r"(\d+)")


def location_key(location: str | None) -> tuple:
    """Sort key of a ``file:line`` location: text parts as text, digit runs as numbers."""
    parts = _DIGITS.split(location or "")
    return tuple((1, int(p), "") if i % 2 else (0, 0, p) for i, p in enumerate(parts))


def _live_ids(batch: pa.Table) -> pa.Table:
    alive = pc.fill_null(pc.equal(batch[STATUS_COLUMN].cast(pa.string()), STATUS_OK), False)
    t = batch.select(["note_id", LOCATION_COLUMN]).filter(alive)
    return pa.Table.from_arrays([t["note_id"].cast(pa.string()), t[LOCATION_COLUMN].cast(pa.string())],
                                names=["note_id", LOCATION_COLUMN])


def repeated_ids(block: pa.Table) -> pa.Table:
    """Whole id groups in; one row (note_id, location, location kept) per record to quarantine."""
    ids, locs, kept = [], [], []
    if block.num_rows > 1:
        groups: dict[str, list[str]] = {}
        for note_id, loc in zip(block["note_id"].to_pylist(), block[LOCATION_COLUMN].to_pylist()):
            groups.setdefault(note_id, []).append(loc)
        for note_id, group in groups.items():
            if len(group) < 2:
                continue
            first, *rest = sorted(group, key=location_key)
            for loc in rest:
                ids.append(note_id)
                locs.append(loc)
                kept.append(first)
    return pa.Table.from_arrays([pa.array(ids, pa.string()), pa.array(locs, pa.string()), pa.array(kept, pa.string())],
                                schema=_SCHEMA)


def _quarantine(batch: pa.Table) -> pa.Table:
    repeat = batch[REPEAT_OF].to_pylist()
    if any(r is not None for r in repeat):
        status, reason, detail = (batch[c].to_pylist() for c in (STATUS_COLUMN, REASON_COLUMN, DETAIL_COLUMN))
        for i, first in enumerate(repeat):
            if first is not None:
                status[i], reason[i] = STATUS_QUARANTINED, Q_DUPLICATE_NOTE_ID
                detail[i] = f"note_id is already used by the record at {first}; give every note its own id"
        for name, values in ((STATUS_COLUMN, status), (REASON_COLUMN, reason), (DETAIL_COLUMN, detail)):
            batch = batch.set_column(batch.schema.get_field_index(name), name, pa.array(values, pa.string()))
    return batch.drop_columns([REPEAT_OF])


def quarantine_repeated_ids(ds: "ray.data.Dataset", partitions: int) -> "ray.data.Dataset":
    """Same rows out; live records that repeat an earlier record's ``note_id`` are quarantined.

    ``ds`` is read twice when there are repeats (ids, then the join): pass a materialized dataset.
    """
    repeats = (
        ds.map_batches(_live_ids, batch_format="pyarrow")
        .repartition(partitions, keys=["note_id"])
        # batch_size=None: one whole shuffle block per call, so an id's records are never split.
        .map_batches(repeated_ids, batch_size=None, batch_format="pyarrow")
        .materialize()
    )
    n = repeats.count()
    if n == 0:
        return ds
    # As in dedup: re-cut the small table so every block has rows (and so a schema) for the join.
    repeats = repeats.repartition(max(1, -(-n // 1_000_000)))
    joined = ds.join(repeats, join_type="left_outer", num_partitions=partitions, on=("note_id", LOCATION_COLUMN))
    return joined.map_batches(_quarantine, batch_format="pyarrow")
