"""The tokenised dataset: what ``clinitune data build`` publishes and training reads.

Layout (``<cache_dir>/<key>/``, published whole; ``key`` is the content hash of everything that
changes the tokens)::

    train/*.parquet, validation/*.parquet   one row per sequence (input_ids, labels, lengths,
                                            status, counts); rows whose status is not ``ok``
                                            keep their reason and are never trained on
    manifest.json                           lineage, counts per split, dropped examples by reason,
                                            pad token id; written last

``load_split`` gives the trainable rows of a split as a Ray Dataset.
"""

from __future__ import annotations

import json
from pathlib import Path

from clinitune.errors import UserError

FORMAT = "clinitune.tokenized/1"
MANIFEST = "manifest.json"
TRAIN_COLUMNS = ["input_ids", "labels", "lengths"]
STATUS_OK = "ok"


def is_built(dataset_dir: str | Path) -> bool:
    return (Path(dataset_dir) / MANIFEST).is_file()


def load_manifest(dataset_dir: str | Path) -> dict:
    """The manifest of a built dataset (a one-line UserError when ``dataset_dir`` is not one)."""
    p = Path(dataset_dir) / MANIFEST
    if not p.is_file():
        raise UserError(f"'{dataset_dir}' is not a built dataset (no {MANIFEST}).", fix="run `clinitune data build` first.")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise UserError(f"'{p}' is not valid JSON.", fix="build the dataset again (`clinitune data build --force`).") from None


def write_manifest(staging: Path, manifest: dict) -> None:
    (Path(staging) / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def load_split(dataset_dir: str | Path, split: str, *, in_memory_below: int = 0):
    """The trainable rows of a built split as a Ray Dataset (input_ids, labels, lengths); None if absent.

    A split whose files total less than ``in_memory_below`` bytes is read here with pyarrow and
    handed to Ray as in-memory blocks (no read tasks, nothing re-read each epoch); larger splits
    stream from storage.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import ray.data

    d = Path(dataset_dir) / split
    if not d.is_dir():
        return None
    files = sorted(d.rglob("*.parquet"))
    if sum(f.stat().st_size for f in files) < in_memory_below:
        tables = [pq.read_table(f, columns=["status", *TRAIN_COLUMNS]) for f in files]
        tables = [t.filter(pc.equal(t["status"], STATUS_OK)).select(TRAIN_COLUMNS) for t in tables]
        return ray.data.from_arrow([t for t in tables if t.num_rows])
    ds = ray.data.read_parquet(str(d), columns=["status", *TRAIN_COLUMNS])
    return ds.filter(expr=f"status == '{STATUS_OK}'").select_columns(TRAIN_COLUMNS)
