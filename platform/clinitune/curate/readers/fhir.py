"""FHIR DocumentReference -> canonical fields (shared by NDJSON Bulk Data and JSON Bundles).

* text: the first ``content[].attachment`` whose ``contentType`` is ``text/plain`` and that has
  inline base64 ``data``, decoded with the attachment's ``charset`` parameter (else the reader's
  encoding). Other attachment types, URL-only attachments and ``entered-in-error`` documents are
  ``unsupported_content``; invalid base64 is ``bad_base64``.
* patient_id: ``subject.reference`` ``Patient/<id>`` (relative, absolute URL or ``/_history``
  form; in a Bundle a ``urn:uuid:`` reference to a Patient entry resolves to that entry's id),
  else ``subject.identifier.value``. Any other subject is a missing patient id.
* note_date: ``context.period.start``, else ``date`` (the clinical time before the index time).
* note_type: ``type.text``, else ``type.coding[0].display``, else ``type.coding[0].code``.
* note_id: ``id``. Passthrough attributes: top-level keys of the resource, when present.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from typing import Any, Mapping

from clinitune.curate.readers.config import ReaderConfig
from clinitune.curate.readers.dates import _type_name
from clinitune.curate.readers.records import map_source_record
from clinitune.errors import RecordError
from clinitune.schema import (
    Q_BAD_BASE64, Q_EMPTY_TEXT, Q_INVALID_ENCODING, Q_MALFORMED, Q_UNSUPPORTED_CONTENT, Q_WRONG_TYPE,
)

DOCUMENT_REFERENCE = "DocumentReference"
_PATIENT_REF = re.compile(r"(?:^|/)Patient/([^/?#\s]+)$")
_TYPES = {"object": dict, "array": list, "string": str}


def _get(obj: Mapping[str, Any], key: str, kind: str, path: str) -> Any:
    """``obj[key]`` when present and of JSON type ``kind``; None when absent or null."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, _TYPES[kind]):
        raise RecordError(Q_WRONG_TYPE, f"field '{path}' is {_type_name(value)}, expected {kind}")
    return value


def check_resource(resource: Any) -> dict[str, Any]:
    """The resource as a dict, if it is a DocumentReference; else the quarantine verdict."""
    if not isinstance(resource, dict):
        raise RecordError(Q_MALFORMED, f"resource is {_type_name(resource)}, expected a JSON object")
    kind = resource.get("resourceType")
    if not isinstance(kind, str):
        raise RecordError(Q_MALFORMED, "resource has no 'resourceType' string")
    if kind != DOCUMENT_REFERENCE:
        raise RecordError(Q_UNSUPPORTED_CONTENT, "resource is not a DocumentReference")
    return resource


def patient_from_reference(ref: str, patient_refs: Mapping[str, str] | None = None) -> str | None:
    ref = ref.strip()
    if patient_refs and ref in patient_refs:
        return patient_refs[ref]
    ref = ref.split("/_history/")[0]
    m = _PATIENT_REF.search(ref)
    return m.group(1) if m else None


def _patient(res: dict[str, Any], patient_refs: Mapping[str, str] | None) -> str | None:
    subject = _get(res, "subject", "object", "subject")
    if subject is None:
        return None
    ref = _get(subject, "reference", "string", "subject.reference")
    if ref:
        pid = patient_from_reference(ref, patient_refs)
        if pid:
            return pid
    ident = _get(subject, "identifier", "object", "subject.identifier")
    if ident is not None:
        value = ident.get("value")
        if isinstance(value, str) and value.strip():
            return value
    return None


def _decode_attachment(att: dict[str, Any], content_type: str, cfg: ReaderConfig) -> str:
    data = _get(att, "data", "string", "content.attachment.data")
    try:
        raw = base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise RecordError(Q_BAD_BASE64, "field 'content.attachment.data' is not valid base64") from None
    charset = cfg.encoding
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'")
    try:
        if codecs.lookup(charset).name == "utf-8":
            charset = "utf-8-sig"
        return raw.decode(charset)
    except LookupError:
        raise RecordError(Q_INVALID_ENCODING, "attachment declares an unknown charset") from None
    except UnicodeDecodeError:
        raise RecordError(Q_INVALID_ENCODING, "attachment data is not valid in its charset") from None


def _text(res: dict[str, Any], cfg: ReaderConfig) -> str:
    content = _get(res, "content", "array", "content")
    if not content:
        raise RecordError(Q_EMPTY_TEXT, "field 'content' is missing or empty")
    url_only = others = 0
    for i, item in enumerate(content):
        if not isinstance(item, dict):
            raise RecordError(Q_WRONG_TYPE, f"field 'content[{i}]' is {_type_name(item)}, expected object")
        att = _get(item, "attachment", "object", f"content[{i}].attachment")
        if att is None:
            others += 1
            continue
        ctype = _get(att, "contentType", "string", f"content[{i}].attachment.contentType") or ""
        if ctype.split(";")[0].strip().lower() != "text/plain":
            others += 1
        elif att.get("data") is None:
            url_only += 1
        else:
            return _decode_attachment(att, ctype, cfg)
    if url_only:
        raise RecordError(Q_UNSUPPORTED_CONTENT, "text/plain attachment has no inline data (url only)")
    raise RecordError(Q_UNSUPPORTED_CONTENT, f"no text/plain attachment ({others} attachment(s) of other types)")


def _note_type(res: dict[str, Any]) -> str | None:
    kind = _get(res, "type", "object", "type")
    if kind is None:
        return None
    text = _get(kind, "text", "string", "type.text")
    if text and text.strip():
        return text
    coding = _get(kind, "coding", "array", "type.coding")
    if coding:
        first = coding[0]
        if not isinstance(first, dict):
            raise RecordError(Q_WRONG_TYPE, f"field 'type.coding[0]' is {_type_name(first)}, expected object")
        return _get(first, "display", "string", "type.coding[0].display") or _get(first, "code", "string", "type.coding[0].code")
    return None


def _date(res: dict[str, Any]) -> tuple[Any, str]:
    context = _get(res, "context", "object", "context")
    if context is not None:
        period = _get(context, "period", "object", "context.period")
        if period is not None and period.get("start") is not None:
            return period["start"], "context.period.start"
    return res.get("date"), "date"


def document_reference_fields(resource: Any, cfg: ReaderConfig, patient_refs: Mapping[str, str] | None = None) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(fields, attributes, names) for a DocumentReference; raises RecordError for a bad one."""
    res = check_resource(resource)
    if res.get("status") == "entered-in-error" or res.get("docStatus") == "entered-in-error":
        raise RecordError(Q_UNSUPPORTED_CONTENT, "document status is entered-in-error")
    fields: dict[str, Any] = {}
    if res.get("id") is not None:
        fields["note_id"] = res["id"]
    fields["text"] = _text(res, cfg)
    patient = _patient(res, patient_refs)
    if patient is not None:
        fields["patient_id"] = patient
    note_type = _note_type(res)
    if note_type is not None:
        fields["note_type"] = note_type
    date, date_name = _date(res)
    if date is not None:
        fields["note_date"] = date
    _, attributes = map_source_record(res, {}, cfg.passthrough_fields)
    names = {"note_id": "id", "patient_id": "subject.reference", "text": "content.attachment.data", "note_date": date_name, "note_type": "type"}
    return fields, attributes, names
