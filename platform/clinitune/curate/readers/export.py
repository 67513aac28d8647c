"""A FHIR export as a whole: Binary resources that notes point at, whatever the file order.

EHRs export a note as a DocumentReference (or a DiagnosticReport's ``presentedForm``) whose
``attachment.url`` points at a ``Binary`` of the same export, usually in another NDJSON file
(``Binary.ndjson``). Before reading, the driver builds an :class:`ExportContext`:

* the Binary index: Binary id -> (file, byte offset, line) for every line of every Binary NDJSON
  file (a file named ``Binary*.ndjson`` or whose first resource is a Binary); the resolver reads
  one line at its offset, so a note's text is never held twice and the index holds no content;
* the referenced set: the Binary ids that some note's attachment points at (a scan of the note
  files' lines that hold ``"url"``).

A reference resolves when it is ``Binary/<id>``, ``#<id>`` (a contained Binary), a Bundle's
``urn:uuid:``/``fullUrl``, or an absolute ``http(s)://.../Binary/<id>`` naming a Binary of this
export: URLs are matched against the export, **never fetched**. Any other absolute URL is
``external_content``; a reference to no Binary of the export is ``unresolved_reference``; a
Binary without ``data`` is ``empty_text``.

Accounting: a Binary that a note points at is part of that note, not a record of its own; a
Binary line that no note points at is a quarantined record (``unreferenced_binary``), as is a
Binary line that is not valid JSON (``malformed_record``). NDJSON files of other resource types
that carry no note (``Patient``, ``Encounter``, ``Observation``...) are listed as skipped files.
"""

from __future__ import annotations

import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterator

from clinitune.errors import RecordError
from clinitune.schema import Q_EMPTY_TEXT, Q_EXTERNAL_CONTENT, Q_UNRESOLVED_REFERENCE, Q_WRONG_TYPE

NOTE_TYPES = ("DocumentReference", "DiagnosticReport")
_BINARY_REF = re.compile(r"(?:^|/)Binary/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
_NAME_TYPE = re.compile(r"^(?:\d+[._-])?([A-Z][A-Za-z]+)")


@lru_cache(maxsize=1)
def fhir_resource_types() -> frozenset[str]:
    """Resource type names of FHIR R4B, from the ``fhir.resources`` package's models."""
    import pkgutil

    import fhir.resources.R4B as r4b

    mods = {m.name for m in pkgutil.iter_modules(r4b.__path__)}
    return frozenset(mods)


def file_resource_type(path: str) -> str | None:
    """The resource type a Bulk Data file is named for (``Patient.ndjson``, ``Binary.002.ndjson``,
    ``1.Encounter.ndjson``), when the name gives one."""
    m = _NAME_TYPE.match(os.path.basename(path))
    if m and m.group(1).lower() in fhir_resource_types():
        return m.group(1)
    return None


def first_resource_type(path: str, limit: int = 1 << 16) -> str | None:
    """``resourceType`` of the first non-blank line of an NDJSON file (read up to ``limit`` bytes)."""
    try:
        with open(path, "rb") as f:
            for line in f:
                if line.strip():
                    m = re.search(rb'"resourceType"\s*:\s*"([A-Za-z]+)"', line[:limit])
                    return m.group(1).decode() if m else None
    except OSError:
        return None
    return None


def ndjson_role(path: str) -> str:
    """'binary', 'note' or 'reference' (a resource type that carries no note)."""
    kind = file_resource_type(path) or first_resource_type(path)
    if kind == "Binary":
        return "binary"
    if kind is None or kind in NOTE_TYPES:
        return "note"
    return "reference"


@dataclass
class ExportContext:
    """The Binary index and the set of referenced Binary ids of one export."""

    binaries: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # id -> (path, offset, line no)
    referenced: frozenset[str] = frozenset()

    @classmethod
    def build(cls, binary_files: list[str], note_files: list[str]) -> "ExportContext":
        ctx = cls()
        for path in binary_files:
            for line_no, offset, obj in _iter_lines(path):
                if isinstance(obj, dict) and obj.get("resourceType") == "Binary" and isinstance(obj.get("id"), str):
                    ctx.binaries.setdefault(obj["id"], (path, offset, line_no))
        refs = set()
        for path in note_files:
            for obj in _note_resources(path):
                for url in _attachment_urls(obj):
                    bid = binary_id(url)
                    if bid is not None:
                        refs.add(bid)
        ctx.referenced = frozenset(refs)
        return ctx

    def resolve(self, url: str, local: dict[str, dict] | None = None) -> tuple[bytes, str]:
        """(raw bytes, content type) of the Binary that ``url`` names (``local``: a Bundle's or
        the resource's own contained Binaries, by fullUrl / ``#id``)."""
        from clinitune.curate.readers.attachments import b64

        url = url.strip()
        binary = (local or {}).get(url)
        if binary is None:
            bid = binary_id(url)
            if bid is None:
                if url.lower().startswith(("http://", "https://", "ftp://")):
                    raise RecordError(Q_EXTERNAL_CONTENT, "attachment url points outside the export (never fetched)")
                raise RecordError(Q_UNRESOLVED_REFERENCE, "attachment url names no Binary of the export")
            binary = (local or {}).get(f"Binary/{bid}") or self._load(bid)
        if binary is None:
            what = "an absolute url naming a Binary that is not in the export" if url.lower().startswith("http") else "a Binary that is not in the export"
            reason = Q_EXTERNAL_CONTENT if url.lower().startswith("http") else Q_UNRESOLVED_REFERENCE
            raise RecordError(reason, f"attachment url is {what} (never fetched)")
        ctype = binary.get("contentType")
        if ctype is not None and not isinstance(ctype, str):
            raise RecordError(Q_WRONG_TYPE, "field 'Binary.contentType' is not a string")
        if binary.get("data") is None:
            raise RecordError(Q_EMPTY_TEXT, "the referenced Binary has no data")
        return b64(binary["data"], "Binary.data"), ctype or ""

    def _load(self, bid: str) -> dict | None:
        where = self.binaries.get(bid)
        if where is None:
            return None
        path, offset, _ = where
        with open(path, "rb") as f:
            f.seek(offset)
            obj = json.loads(f.readline())
        return obj if isinstance(obj, dict) else None


def binary_id(url: str) -> str | None:
    m = _BINARY_REF.search(url.strip().split("?")[0])
    return m.group(1) if m else None


def _iter_lines(path: str, needle: bytes | None = None) -> Iterator[tuple[int, int, object]]:
    """(line no, byte offset, parsed JSON or None) of each non-blank line (only those holding ``needle``)."""
    try:
        f = open(path, "rb")
    except OSError:
        return
    with f:
        offset = 0
        for line_no, line in enumerate(f, 1):
            start = offset
            offset += len(line)
            if not line.strip() or (needle is not None and needle not in line):
                continue
            try:
                yield line_no, start, json.loads(line)
            except (ValueError, RecursionError):
                yield line_no, start, None


def _note_resources(path: str) -> Iterator[object]:
    """Resources of a note file that may point at a Binary: NDJSON lines holding "url", or the
    entries of a JSON Bundle."""
    if not path.lower().endswith(".json"):
        for _, _, obj in _iter_lines(path, needle=b'"url"'):
            yield obj
        return
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
    except (OSError, ValueError, RecursionError):
        return
    if isinstance(doc, dict) and isinstance(doc.get("entry"), list):
        for entry in doc["entry"]:
            if isinstance(entry, dict):
                yield entry.get("resource")
    else:
        yield doc


def _attachment_urls(obj: object) -> Iterator[str]:
    if not isinstance(obj, dict):
        return
    atts = []
    if obj.get("resourceType") == "DocumentReference" and isinstance(obj.get("content"), list):
        atts = [c.get("attachment") for c in obj["content"] if isinstance(c, dict)]
    elif obj.get("resourceType") == "DiagnosticReport" and isinstance(obj.get("presentedForm"), list):
        atts = obj["presentedForm"]
    for att in atts:
        if isinstance(att, dict) and isinstance(att.get("url"), str):
            yield att["url"]


# ---------------------------------------------------------------------------------------------
# The context of the current process (set by the pipeline's read tasks; by tests with ``use``)

_CURRENT: ExportContext | None = None


def current() -> ExportContext | None:
    return _CURRENT


@contextmanager
def use(ctx: ExportContext | None):
    global _CURRENT
    before, _CURRENT = _CURRENT, ctx
    try:
        yield ctx
    finally:
        _CURRENT = before
