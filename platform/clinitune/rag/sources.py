"""Read knowledge-base sources into documents: text, markdown, JSONL, and the built-in ICD-10-CM table.

* ``.txt`` / ``.md`` / ``.markdown``: one document per file; its id is the path relative to the
  directory given on the command line (or the file name when a file is given).
* ``.jsonl`` / ``.ndjson``: one document per line, an object with ``text`` (required) and optional
  ``id``, ``title``, ``source`` and ``metadata``; without ``id`` the line is ``<file>:<line>``.
  A bad line is rejected with a reason (file and line, never its text); the rest is ingested.
* ``icd10_documents()``: every billable ICD-10-CM code, one document per code (id = the code).

Files in directories whose names start with ``.`` or ``_`` are metadata and are not read; other
unsupported files found in a directory are reported as rejected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Iterator

from clinitune.errors import InputPathError
from clinitune.rag.chunking import Document

TEXT_SUFFIXES = {".txt": False, ".md": True, ".markdown": True}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
SUPPORTED = sorted([*TEXT_SUFFIXES, *JSONL_SUFFIXES])
ICD10_SOURCE = "icd10cm"


@dataclass(frozen=True)
class Rejected:
    """A source record that was not ingested, and why (no record text)."""

    where: str
    reason: str


def _files(path: Path) -> Iterator[tuple[Path, str]]:
    """(file, id prefix) pairs: a file stands for itself; a directory is walked in sorted order."""
    if path.is_file():
        yield path, path.name
        return
    for f in sorted(path.rglob("*")):
        rel = f.relative_to(path)
        if any(part.startswith((".", "_")) for part in rel.parts) or not f.is_file():
            continue
        yield f, rel.as_posix()


def check_paths(paths: list[Path]) -> None:
    """Fail early, as a one-line user error, on a path that does not exist or a file of unknown kind."""
    for p in paths:
        if not p.exists():
            raise InputPathError(f"knowledge-base source '{p}' does not exist. Fix: pass existing files or directories.")
        if p.is_file() and p.suffix.lower() not in {*TEXT_SUFFIXES, *JSONL_SUFFIXES}:
            raise InputPathError(
                f"knowledge-base source '{p}' has unsupported type '{p.suffix or '<none>'}'.",
                fix=f"pass {', '.join(SUPPORTED)} files (or a directory of them).",
            )


def _read_text(f: Path, doc_id: str, rejected: list[Rejected]) -> Iterator[Document]:
    try:
        text = f.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        rejected.append(Rejected(str(f), "not UTF-8 text"))
        return
    if not text.strip():
        rejected.append(Rejected(str(f), "empty file"))
        return
    title = f.stem.replace("_", " ").replace("-", " ")
    yield Document(doc_id, str(f), text, title=title, markdown=TEXT_SUFFIXES[f.suffix.lower()])


def _read_jsonl(f: Path, prefix: str, rejected: list[Rejected]) -> Iterator[Document]:
    with f.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            where = f"{f}:{lineno}"
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                rejected.append(Rejected(where, "not valid JSON"))
                continue
            if not isinstance(rec, dict):
                rejected.append(Rejected(where, "not a JSON object"))
                continue
            text = rec.get("text")
            if not isinstance(text, str) or not text.strip():
                rejected.append(Rejected(where, "missing or empty 'text' string"))
                continue
            doc_id = rec.get("id", f"{prefix}:{lineno}")
            if not isinstance(doc_id, (str, int)) or not str(doc_id).strip():
                rejected.append(Rejected(where, "'id' must be a non-empty string or integer"))
                continue
            meta = rec.get("metadata") or {}
            if not isinstance(meta, dict):
                rejected.append(Rejected(where, "'metadata' must be an object"))
                continue
            yield Document(str(doc_id), str(rec.get("source") or f), text,
                           title=str(rec.get("title") or ""), markdown=False, metadata=meta)


def read_documents(paths: list[Path], rejected: list[Rejected]) -> Iterator[Document]:
    """Documents from files and directories, appending every record that cannot be read to ``rejected``."""
    check_paths(paths)
    for path in paths:
        for f, doc_id in _files(path):
            suffix = f.suffix.lower()
            if suffix in TEXT_SUFFIXES:
                yield from _read_text(f, doc_id, rejected)
            elif suffix in JSONL_SUFFIXES:
                yield from _read_jsonl(f, doc_id, rejected)
            else:
                rejected.append(Rejected(str(f), f"unsupported file type '{suffix or '<none>'}' (supported: {', '.join(SUPPORTED)})"))


def icd10_document(entry) -> Document:
    """One ICD-10-CM code as a short passage: the code and its name as the title, then one line of
    the other ways a note writes it (CMS short name, clinician form, common abbreviations)."""
    from clinitune.terminology.icd10 import mention_forms

    also = [f for f in mention_forms(entry) if f.lower() != entry.long_name.lower()]
    text = f"Also written: {'; '.join(also)}." if also else "ICD-10-CM diagnosis code."
    return Document(entry.code, ICD10_SOURCE, text, title=f"{entry.code} {entry.long_name}")


def icd10_documents(categories: Collection[str] | None = None, *, exclude: Collection[str] = ()) -> Iterator[Document]:
    """One document per billable ICD-10-CM code from the CMS table (``clinitune.terminology.icd10``).

    ``categories`` (3-character codes such as "I50") keeps only their codes: a scoped table;
    ``exclude`` leaves out the listed codes.
    """
    from clinitune.terminology.icd10 import load_icd10_table

    keep = {c.upper() for c in categories} if categories is not None else None
    skip = {c.upper() for c in exclude}
    for e in load_icd10_table():
        if (keep is not None and e.code[:3] not in keep) or e.code in skip:
            continue
        yield icd10_document(e)
