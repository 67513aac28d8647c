"""FHIR JSON files: a Bundle (one record per entry) or a single DocumentReference.

Every ``entry`` of a Bundle is one physical record, located ``path#entry N`` (1-based):
DocumentReference and DiagnosticReport entries become notes; a Binary entry that a note of the
Bundle points at (by ``fullUrl`` or ``Binary/<id>``) is part of that note, not a record, and one
that no note points at is ``unreferenced_binary``; entries of other resource types (Patient,
Encounter...) are quarantined as ``unsupported_content`` so that nothing in the file passes
unaccounted; entries without a resource object are ``malformed_record``. ``urn:uuid:`` subject
references resolve through the Bundle's Patient entries. A file holding one DocumentReference is one
record located ``path``. A file that is not valid JSON, not decodable, or JSON of another shape
(not a Bundle) is one quarantined record located ``path``.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from clinitune.curate.readers.config import ReaderConfig
from clinitune.curate.readers.dates import _type_name
from clinitune.curate.readers import export
from clinitune.curate.readers.fhir import NOTE_RESOURCES, note_fields
from clinitune.curate.readers.records import RawRecord, file_tag, quarantined
from clinitune.errors import RecordError
from clinitune.schema import Q_INVALID_ENCODING, Q_MALFORMED, Q_TEXT_TOO_LONG, Q_UNREFERENCED_BINARY

_FILE = "file"


def _max_bytes(cfg: ReaderConfig) -> int:
    return max(1024 * 1024 * 1024, 16 * cfg.max_text_chars)


def _load(task: dict[str, Any], cfg: ReaderConfig) -> Any:
    size = int(task.get("size") or 0)
    if size > _max_bytes(cfg):
        raise RecordError(Q_TEXT_TOO_LONG, f"JSON file is over the {_max_bytes(cfg)}-byte limit for one document")
    with open(task["path"], "rb") as f:
        raw = f.read()
    try:
        text = raw.decode(cfg.decoding())
    except UnicodeDecodeError:
        raise RecordError(Q_INVALID_ENCODING, f"file is not valid {cfg.encoding}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise RecordError(Q_MALFORMED, f"file is not valid JSON ({err.msg} at line {err.lineno})") from None
    except (ValueError, RecursionError):
        raise RecordError(Q_MALFORMED, "file is not valid JSON (too deeply nested or invalid)") from None


def iter_entries(task: dict[str, Any], cfg: ReaderConfig) -> Iterator[tuple[int | None, Any]]:
    """``(entry_no, entry)`` per physical record; ``(None, doc)`` for a lone DocumentReference;
    ``(None, RecordError)`` for a file that cannot be read as FHIR."""
    try:
        doc = _load(task, cfg)
        if not isinstance(doc, dict):
            raise RecordError(Q_MALFORMED, f"file is not a FHIR Bundle (top level is a JSON {_type_name(doc)})")
        kind = doc.get("resourceType")
        if kind in NOTE_RESOURCES:
            yield None, doc
            return
        if kind != "Bundle":
            raise RecordError(Q_MALFORMED, "file is not a FHIR Bundle (resourceType is not 'Bundle' or 'DocumentReference')")
        entries = doc.get("entry")
        if entries is None:
            return
        if not isinstance(entries, list):
            raise RecordError(Q_MALFORMED, f"Bundle field 'entry' is {_type_name(entries)}, expected array")
    except RecordError as err:
        yield None, err
        return
    yield from enumerate(entries, 1)


def _patient_refs(entries: list[Any]) -> dict[str, str]:
    refs: dict[str, str] = {}
    for entry in entries:
        res = entry.get("resource") if isinstance(entry, dict) else None
        url = entry.get("fullUrl") if isinstance(entry, dict) else None
        if isinstance(res, dict) and res.get("resourceType") == "Patient" and isinstance(url, str):
            pid = res.get("id")
            refs[url] = pid if isinstance(pid, str) and pid else url.rsplit(":", 1)[-1]
    return refs


def _binaries(entries: list[Any]) -> tuple[dict[str, dict], set[int]]:
    """The Bundle's Binary entries by fullUrl and ``Binary/<id>``, and the entry numbers of those
    that a note entry of the Bundle points at."""
    local: dict[str, dict] = {}
    entry_of: dict[str, int] = {}
    for n, entry in enumerate(entries, 1):
        res = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(res, dict) and res.get("resourceType") == "Binary":
            for key in (entry.get("fullUrl"), f"Binary/{res.get('id')}" if isinstance(res.get("id"), str) else None):
                if isinstance(key, str):
                    local[key] = res
                    entry_of[key] = n
    used = set()
    for entry in entries:
        res = entry.get("resource") if isinstance(entry, dict) else None
        for url in export._attachment_urls(res):
            key = url if url in entry_of else (f"Binary/{export.binary_id(url)}" if export.binary_id(url) else None)
            if key in entry_of:
                used.add(entry_of[key])
    return local, used


def iter_records(task: dict[str, Any], cfg: ReaderConfig) -> Iterator[RawRecord]:
    path = task["path"]
    tag = file_tag(path)
    items = list(iter_entries(task, cfg))
    refs = _patient_refs([e for _, e in items])
    local, used = _binaries([e for n, e in items if n is not None])
    for n, entry in items:
        if n is not None and n in used:
            continue  # part of the note that points at it
        loc, fid = (f"{path}#entry {n}", f"{tag}-E{n}") if n is not None else (path, f"{tag}-E")
        if isinstance(entry, RecordError):
            yield quarantined(loc, fid, entry.reason, entry.detail)
            continue
        resource = entry if n is None else (entry.get("resource") if isinstance(entry, dict) else None)
        if not isinstance(resource, dict):
            what = "entry" if not isinstance(entry, dict) else "entry 'resource'"
            yield quarantined(loc, fid, Q_MALFORMED, f"{what} is not a JSON object")
            continue
        if resource.get("resourceType") == "Binary":
            yield quarantined(loc, fid, Q_UNREFERENCED_BINARY, "Binary entry that no note of the Bundle points at")
            continue
        try:
            fields, attrs, names = note_fields(resource, cfg, refs, local)
            yield RawRecord(loc, fid, fields, attrs, names)
        except RecordError as err:
            is_doc = resource.get("resourceType") in NOTE_RESOURCES
            yield quarantined(loc, fid, err.reason, err.detail, resource.get("id") if is_doc else None)


def count_records(task: dict[str, Any], cfg: ReaderConfig) -> int:
    items = list(iter_entries(task, cfg))
    _, used = _binaries([e for n, e in items if n is not None])
    return sum(1 for n, _ in items if n is None or n not in used)
