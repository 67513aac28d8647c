"""Finding a source's split files, counting their rows cheaply, and hashing them for lineage.

Accepted layouts under ``source``: a curated dataset (:mod:`clinitune.artifacts.curated`),
``<split>/*.jsonl``, or ``<split>.parquet`` / ``<split>.jsonl`` / ``<split>.csv`` files (a CSV with
a header row; quoted fields may hold newlines, as public corpora such as MTS-Dialog ship them).
The validation split may also be named ``valid``, ``val`` or ``dev``. Files whose names start
with ``_`` or ``.`` are metadata and skipped.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from clinitune.artifacts.curated import lineage, visible
from clinitune.errors import InputPathError, UserError

FORMATS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}
SPLIT_ALIASES = {"validation": ("validation", "valid", "val", "dev")}


def _csv_options():
    import pyarrow.csv as pacsv

    return pacsv.ParseOptions(newlines_in_values=True)


def split_files(source: str | Path, split: str) -> tuple[list[Path], str]:
    """The files holding ``split`` and their format ('parquet' or 'json'); ([], '') when the split is absent."""
    root = Path(source)
    cands: list[Path] = []
    for name in SPLIT_ALIASES.get(split, (split,)):
        sub = root / name
        if sub.is_dir():
            cands = sorted(p for p in sub.rglob("*") if p.is_file() and visible(p) and p.suffix in FORMATS)
        else:
            cands = [root / f"{name}{ext}" for ext in FORMATS if (root / f"{name}{ext}").is_file()]
        if cands:
            break
    if not cands:
        return [], ""
    kinds = {FORMATS[p.suffix] for p in cands}
    if len(kinds) > 1:
        raise UserError(f"data.source: split '{split}' under '{root}' mixes Parquet and JSONL files.",
                        fix="keep one format per split.")
    return cands, kinds.pop()


def check_source(source: str | Path) -> Path:
    root = Path(source).expanduser()
    if not root.exists():
        raise InputPathError(f"data.source '{root}' does not exist.",
                             fix="point it at a curated dataset directory (clinitune curate output) or a directory of split files.")
    if not root.is_dir():
        raise InputPathError(f"data.source '{root}' is not a directory.",
                             fix="point it at the directory that holds train/ and validation/ (or train.jsonl ...).")
    return root


def count_rows(files: list[Path], fmt: str) -> int:
    """Rows in the files without reading their data (Parquet footers; JSONL non-blank lines)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    if fmt == "csv":  # quoted fields may span lines: parse, do not count lines
        import pyarrow.csv as pacsv

        return sum(pacsv.read_csv(f, parse_options=_csv_options()).num_rows for f in files)
    n = 0
    for f in files:
        with open(f, "rb") as fh:
            n += sum(1 for line in fh if line.strip())
    return n


def parquet_columns(files: list[Path]) -> list[str]:
    import pyarrow.parquet as pq

    return list(pq.read_schema(files[0]).names)


def csv_columns(files: list[Path]) -> list[str]:
    import pyarrow.csv as pacsv

    with pacsv.open_csv(files[0], parse_options=_csv_options()) as reader:
        return list(reader.schema.names)


def columns_of(files: list[Path], fmt: str) -> list[str]:
    return {"parquet": parquet_columns, "csv": csv_columns}.get(fmt, json_columns)(files)


def read_frame(files: list[Path], fmt: str, columns: list[str] | None = None):
    """The split's files as one pandas DataFrame (small splits: evaluation's held-out set)."""
    import pandas as pd

    if fmt == "parquet":
        return pd.concat([pd.read_parquet(f, columns=columns) for f in files], ignore_index=True)
    if fmt == "csv":
        import pyarrow.csv as pacsv

        df = pd.concat([pacsv.read_csv(f, parse_options=_csv_options()).to_pandas() for f in files], ignore_index=True)
    else:
        df = pd.concat([pd.read_json(f, lines=True) for f in files], ignore_index=True)
    return df[[c for c in columns if c in df.columns]] if columns else df


def json_columns(files: list[Path]) -> list[str]:
    with open(files[0], encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    raise UserError(f"data.source: first record of '{files[0].name}' is not valid JSON.",
                                    fix="write one JSON object per line (JSONL).") from None
                return list(row) if isinstance(row, dict) else []
    return []


def source_lineage(source: str | Path, splits: list[str]) -> dict:
    """What the built dataset came from: the source manifest's hash (or the files' content hash)."""
    root = Path(source)
    out: dict = {"path": str(root.resolve())}
    curated = lineage(root)
    if curated is not None:
        out["manifest_sha256"] = curated.manifest_sha256
        for key in ("dataset_hash", "config_hash", "run_id"):
            if getattr(curated, key):
                out[f"source_{key}"] = getattr(curated, key)
        out["content_hash"] = out["manifest_sha256"]
        return out
    h = hashlib.sha256()
    for split in splits:
        files, _ = split_files(root, split)
        for f in files:
            h.update(f"{split}/{f.relative_to(root)}\0".encode())
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    out["content_hash"] = h.hexdigest()
    return out


def read_split(files: list[Path], fmt: str, columns: list[str] | None = None):
    """A Ray Dataset over the split's files (only ``columns`` when given)."""
    import ray.data

    paths = [str(f) for f in files]
    if fmt == "parquet":
        return ray.data.read_parquet(paths, columns=columns)
    if fmt == "csv":
        ds = ray.data.read_csv(paths, parse_options=_csv_options())
        return ds.select_columns(columns) if columns else ds
    ds = ray.data.read_json(paths, lines=True)
    return ds.select_columns(columns) if columns else ds
