"""The curated dataset: what ``clinitune curate`` publishes and data building, evaluation and the
pipeline read.

Layout (published whole)::

    DIR/train/*.parquet  DIR/validation/*.parquet  DIR/test/*.parquet   one row per note
    DIR/quarantine/*.parquet   records that failed validation: id, source location, reason (no text)
    DIR/dropped/*.parquet      filtered and duplicate notes: id, reason, survivor id (no text)
    DIR/manifest.json          counts that reconcile, config hash, versions, input fingerprints,
                               dataset_hash (content hash of the splits); written last
    DIR/DATASET_CARD.md        the same, for a person
    DIR/canaries.json          only in a copy with PHI-leakage canaries planted in its train split

Files whose names start with ``_`` or ``.`` are metadata, not data.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from clinitune.errors import InputPathError
from clinitune.schema import SPLITS

MANIFEST = "manifest.json"
CARD = "DATASET_CARD.md"
QUARANTINE = "quarantine"
DROPPED = "dropped"
CANARIES = "canaries.json"
OUTPUT_DIRS = (*SPLITS, QUARANTINE, DROPPED)


def visible(p: Path) -> bool:
    return not p.name.startswith(("_", "."))


def split_files(root: str | Path, split: str) -> list[Path]:
    """The Parquet files of ``split`` under a curated dataset (sorted; metadata files skipped)."""
    d = Path(root) / split
    return sorted(p for p in d.rglob("*.parquet") if p.is_file() and visible(p)) if d.is_dir() else []


@dataclass(frozen=True)
class DatasetLineage:
    """Where a curated dataset came from, as training, evaluation and the registry record it."""

    path: str
    manifest_sha256: str | None = None
    dataset_hash: str | None = None
    parent_dataset_hash: str | None = None  # set when this is a copy (e.g. with canaries planted)
    config_hash: str | None = None
    run_id: str | None = None


def read_manifest(root: str | Path, *, what: str = "data") -> dict:
    """The manifest of the curated dataset at ``root``; an InputPathError (naming ``what``) when there is none."""
    p = Path(root) / MANIFEST
    if not p.is_file():
        raise InputPathError(f"{what}: '{root}' has no {MANIFEST}, so it is not a curated dataset.",
                             fix="pass the output directory of `clinitune curate`.")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise InputPathError(f"{what}: '{p}' is not valid JSON.", fix="curate the dataset again.") from None
    return data if isinstance(data, dict) else {}


def lineage(root: str | Path) -> DatasetLineage | None:
    """The dataset's lineage from its manifest; None when ``root`` has no manifest."""
    root = Path(root)
    p = root / MANIFEST
    if not p.is_file():
        return None
    raw = p.read_bytes()
    try:
        m = json.loads(raw)
    except json.JSONDecodeError:
        m = {}
    if not isinstance(m, dict):
        m = {}
    return DatasetLineage(path=str(root.resolve()), manifest_sha256=hashlib.sha256(raw).hexdigest(),
                          dataset_hash=m.get("dataset_hash"), parent_dataset_hash=m.get("parent_dataset_hash"),
                          config_hash=m.get("config_hash"), run_id=m.get("run_id"))
