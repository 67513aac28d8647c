"""Finding input files and fingerprinting them (on the driver: names and sizes only, no data).

Formats are chosen by extension, case-insensitively: ``.jsonl``, ``.ndjson`` (FHIR Bulk Data),
``.json`` (FHIR Bundle), ``.csv``, ``.parquet``, ``.txt``. Directories are walked recursively in
sorted order. Inside a directory, files with other extensions, hidden entries (name starting
with ``.``), metadata files (name starting with ``_``, as ``_SUCCESS`` or a generator's
``_synth_manifest.json``: the Hadoop/Spark convention) and, unless ``follow_symlinks``, symbolic links are not read: they are returned as
the *skipped* list so the manifest can show them. A path given explicitly must exist and, if a
file, have a supported extension. The same file reached twice is read once. Paths are absolute.
NDJSON files of a FHIR Bulk Data export are sorted by role (``readers.export``): Binary files
become format ``fhir_binary``; files of resource types that carry no note (``Patient.ndjson``,
``Encounter.ndjson``...) are skipped.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from clinitune.curate.readers.config import ReaderConfig
from clinitune.errors import InputPathError

FORMATS = {".jsonl": "jsonl", ".ndjson": "ndjson", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "txt"}


@dataclass(frozen=True)
class InputFile:
    """One input file: absolute ``path``, ``format`` (see FORMATS), ``size`` in bytes, and the
    ``root`` directory it was found under (its parent when named directly; gives .txt note ids)."""

    path: str
    format: str
    size: int
    root: str = ""


def format_of(path: str) -> str | None:
    return FORMATS.get(os.path.splitext(path)[1].lower())


def _walk(root: str, cfg: ReaderConfig, found: list[InputFile], skipped: list[str]) -> None:
    def unreadable(err: OSError) -> None:  # never a silent skip
        skipped.append(str(err.filename))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=cfg.follow_symlinks):
        keep = []
        for d in sorted(dirnames):
            full = os.path.join(dirpath, d)
            if d.startswith(".") or (os.path.islink(full) and not cfg.follow_symlinks):
                skipped.append(full + os.sep)
            else:
                keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            fmt = format_of(name)
            if name.startswith((".", "_")) or fmt is None or (os.path.islink(full) and not cfg.follow_symlinks):
                skipped.append(full)
            elif not os.path.isfile(full):  # a dangling link, a socket...
                skipped.append(full)
            else:
                found.append(InputFile(full, fmt, os.path.getsize(full), root))


def _fhir_roles(files: list[InputFile], skipped: list[str]) -> list[InputFile]:
    """NDJSON files of a FHIR export by role: Binary files are read as ``fhir_binary``; files of
    resource types that carry no note (Patient, Encounter...) join the skipped list."""
    from clinitune.curate.readers.export import ndjson_role

    out = []
    for f in files:
        role = ndjson_role(f.path) if f.format == "ndjson" else "note"
        if role == "reference":
            skipped.append(f.path)
        else:
            out.append(InputFile(f.path, "fhir_binary", f.size, f.root) if role == "binary" else f)
    return out


def discover_inputs(paths: list[str], cfg: ReaderConfig) -> tuple[list[InputFile], list[str]]:
    """``(files to read, skipped paths)`` for the given files and directories.

    Raises InputPathError (one line) for a path that does not exist, a file with an unsupported
    extension, a directory holding no supported file, or an empty list of paths.
    """
    if not paths:
        raise InputPathError("no input path given. Fix: pass at least one input file or directory.")
    files: list[InputFile] = []
    skipped: list[str] = []
    seen: set[str] = set()
    supported = ", ".join(FORMATS)
    for given in paths:
        path = os.path.abspath(os.path.expanduser(str(given)))
        if not os.path.exists(path):
            raise InputPathError(f"input path '{given}' does not exist. Fix: pass an existing file or directory.")
        if os.path.isdir(path):
            found: list[InputFile] = []
            _walk(path, cfg, found, skipped)
            if not found:
                raise InputPathError(
                    f"input directory '{given}' holds no supported input file. Fix: point it at {supported} files."
                )
        else:
            fmt = format_of(path)
            if fmt is None:
                raise InputPathError(
                    f"input file '{given}' has an unsupported extension. Fix: use one of {supported} (or rename it)."
                )
            found = [InputFile(path, fmt, os.path.getsize(path), os.path.dirname(path))]
        for f in found:
            key = os.path.realpath(f.path)
            if key not in seen:
                seen.add(key)
                files.append(f)
    return _fhir_roles(files, skipped), skipped


def discover_inputs_with_skipped(paths: list[str], cfg: ReaderConfig) -> tuple[list[InputFile], list[str]]:
    """Alias of :func:`discover_inputs` (which already returns the skipped paths)."""
    return discover_inputs(paths, cfg)


def fingerprint_file(path: str, block_size: int = 4 * 1024 * 1024) -> dict:
    """``{"path", "size", "sha256"}`` of a file, read in blocks (constant memory)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(block_size):
            digest.update(block)
            size += len(block)
    return {"path": str(path), "size": size, "sha256": digest.hexdigest()}
