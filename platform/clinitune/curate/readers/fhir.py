"""FHIR note resources -> canonical fields (shared by NDJSON Bulk Data and JSON Bundles).

Notes come as a ``DocumentReference`` (text in ``content[].attachment``) or a
``DiagnosticReport`` (text in ``presentedForm[]``). Each resource is validated against the FHIR R4
structure with ``fhir.resources``' R4B models (DocumentReference and DiagnosticReport are
unchanged from R4; about 0.2 ms a resource, measured) after the reader's own checks, which give
more specific reasons (``bad_base64``, ``wrong_type``; dates go to the shared date parser): a
failure is ``invalid_fhir`` naming the field (path and error type, never the value).

* text: the best text attachment (``readers.attachments``: plain, markdown, HTML, XHTML, RTF;
  charset honoured), inline ``data`` or ``url`` resolved to a Binary of the same export
  (``readers.export``; never fetched). ``entered-in-error`` documents are ``unsupported_content``.
* patient_id: ``subject.reference`` ``Patient/<id>`` (relative, absolute URL or ``/_history``
  form; in a Bundle a ``urn:uuid:`` reference to a Patient entry resolves to that entry's id),
  else ``subject.identifier.value``. Any other subject is a missing patient id.
* note_date: DocumentReference ``context.period.start``, else ``date``; DiagnosticReport
  ``effectiveDateTime`` / ``effectivePeriod.start``, else ``issued``.
* note_type: ``type`` (DocumentReference) or ``code`` (DiagnosticReport): ``text``, else the
  first coding's ``display``, else its ``code``.
* attributes (metadata): ``resource_type``, ``encounter`` (the referenced Encounter id),
  ``author_role`` (the resource type of the first author/performer: Practitioner,
  PractitionerRole, Organization, Device...; never a name), ``category``, plus the configured
  passthrough keys.
* note_id: ``id``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Mapping

from clinitune.curate.readers.attachments import best_text
from clinitune.curate.readers.config import ReaderConfig
from clinitune.curate.readers.dates import _type_name
from clinitune.curate.readers.records import map_source_record
from clinitune.errors import RecordError
from clinitune.schema import Q_EMPTY_TEXT, Q_INVALID_FHIR, Q_MALFORMED, Q_UNSUPPORTED_CONTENT, Q_WRONG_TYPE

DOCUMENT_REFERENCE = "DocumentReference"
DIAGNOSTIC_REPORT = "DiagnosticReport"
NOTE_RESOURCES = (DOCUMENT_REFERENCE, DIAGNOSTIC_REPORT)
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
    if kind not in NOTE_RESOURCES:
        raise RecordError(Q_UNSUPPORTED_CONTENT, "resource is not a DocumentReference or DiagnosticReport")
    return resource


_DATE_LOCS = {("date",), ("context", "period"), ("effectiveDateTime",), ("effectivePeriod",), ("issued",)}


@lru_cache(maxsize=2)
def _model(kind: str):
    if kind == DOCUMENT_REFERENCE:
        from fhir.resources.R4B.documentreference import DocumentReference as model
    else:
        from fhir.resources.R4B.diagnosticreport import DiagnosticReport as model
    return model


def validate_structure(res: dict[str, Any]) -> None:
    """FHIR R4 structure check; ``invalid_fhir`` naming the first failing field (never its value)."""
    from pydantic import ValidationError

    try:
        _model(res["resourceType"]).model_validate(res)
    except ValidationError as err:
        # The note date is checked (and quarantined as unparseable_date) by the shared date parser;
        # attachment data by the reader when it is the text read (an unread PDF copy may be bad).
        def ours(loc: tuple) -> bool:
            return loc[:2] in _DATE_LOCS or loc[:1] in _DATE_LOCS or (bool(loc) and loc[-1] == "data")

        errors = [e for e in err.errors() if not ours(tuple(map(str, e.get("loc", ()))))]
        if not errors:
            return
        first = errors[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "(resource)"
        raise RecordError(Q_INVALID_FHIR, f"field '{where}' fails FHIR R4 validation ({first.get('type', 'invalid')})") from None
    except (ValueError, TypeError, RecursionError) as err:
        raise RecordError(Q_INVALID_FHIR, f"resource fails FHIR R4 validation ({type(err).__name__})") from None


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


def _attachments(res: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    if res["resourceType"] == DIAGNOSTIC_REPORT:
        forms = _get(res, "presentedForm", "array", "presentedForm")
        if not forms:
            raise RecordError(Q_EMPTY_TEXT, "field 'presentedForm' is missing or empty")
        out = []
        for i, att in enumerate(forms):
            if not isinstance(att, dict):
                raise RecordError(Q_WRONG_TYPE, f"field 'presentedForm[{i}]' is {_type_name(att)}, expected object")
            out.append((f"presentedForm[{i}]", att))
        return out
    content = _get(res, "content", "array", "content")
    if not content:
        raise RecordError(Q_EMPTY_TEXT, "field 'content' is missing or empty")
    out = []
    for i, item in enumerate(content):
        if not isinstance(item, dict):
            raise RecordError(Q_WRONG_TYPE, f"field 'content[{i}]' is {_type_name(item)}, expected object")
        att = _get(item, "attachment", "object", f"content[{i}].attachment")
        if att is not None:
            out.append((f"content[{i}].attachment", att))
    if not out:
        raise RecordError(Q_UNSUPPORTED_CONTENT, "no attachment in 'content'")
    return out


def _contained(res: dict[str, Any]) -> dict[str, dict]:
    out = {}
    for c in res.get("contained") or []:
        if isinstance(c, dict) and c.get("resourceType") == "Binary" and isinstance(c.get("id"), str):
            out[f"#{c['id']}"] = c
    return out


def _text(res: dict[str, Any], cfg: ReaderConfig, local: Mapping[str, dict] | None) -> str:
    from clinitune.curate.readers import export

    ctx = export.current() or export.ExportContext()
    binaries = {**(local or {}), **_contained(res)}
    return best_text(_attachments(res), lambda url: ctx.resolve(url, binaries), cfg.encoding)


def _concept(res: dict[str, Any], name: str) -> str | None:
    kind = _get(res, name, "object", name)
    if kind is None:
        return None
    text = _get(kind, "text", "string", f"{name}.text")
    if text and text.strip():
        return text
    coding = _get(kind, "coding", "array", f"{name}.coding")
    if coding:
        first = coding[0]
        if not isinstance(first, dict):
            raise RecordError(Q_WRONG_TYPE, f"field '{name}.coding[0]' is {_type_name(first)}, expected object")
        return _get(first, "display", "string", f"{name}.coding[0].display") or _get(first, "code", "string", f"{name}.coding[0].code")
    return None


def _ref_id(ref: Any) -> str | None:
    if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
        return ref["reference"].split("/_history/")[0].rstrip("/").rsplit("/", 1)[-1] or None
    return None


def _ref_type(ref: Any) -> str | None:
    if not isinstance(ref, dict):
        return None
    if isinstance(ref.get("type"), str):
        return ref["type"]
    r = ref.get("reference")
    if isinstance(r, str) and "/" in r:
        return r.split("/_history/")[0].rstrip("/").rsplit("/", 2)[-2]
    return None


def _metadata(res: dict[str, Any]) -> dict[str, Any]:
    """Encounter, author role, category: ids and codes only, never names."""
    meta: dict[str, Any] = {"resource_type": res["resourceType"]}
    if res["resourceType"] == DOCUMENT_REFERENCE:
        context = res.get("context") if isinstance(res.get("context"), dict) else {}
        enc = context.get("encounter")
        enc = enc[0] if isinstance(enc, list) and enc else enc
        authors = res.get("author")
    else:
        enc = res.get("encounter")
        authors = res.get("performer") or res.get("resultsInterpreter")
    if _ref_id(enc):
        meta["encounter"] = _ref_id(enc)
    if isinstance(authors, list) and authors and _ref_type(authors[0]):
        meta["author_role"] = _ref_type(authors[0])
    cats = res.get("category")
    cat = cats[0] if isinstance(cats, list) and cats else cats
    if isinstance(cat, dict):
        label = cat.get("text") or next((c.get("display") or c.get("code") for c in cat.get("coding") or [] if isinstance(c, dict)), None)
        if isinstance(label, str):
            meta["category"] = label
    return meta


def _date(res: dict[str, Any]) -> tuple[Any, str]:
    if res["resourceType"] == DIAGNOSTIC_REPORT:
        if res.get("effectiveDateTime") is not None:
            return res["effectiveDateTime"], "effectiveDateTime"
        period = res.get("effectivePeriod")
        if isinstance(period, dict) and period.get("start") is not None:
            return period["start"], "effectivePeriod.start"
        return res.get("issued"), "issued"
    context = _get(res, "context", "object", "context")
    if context is not None:
        period = _get(context, "period", "object", "context.period")
        if period is not None and period.get("start") is not None:
            return period["start"], "context.period.start"
    return res.get("date"), "date"


def note_fields(resource: Any, cfg: ReaderConfig, patient_refs: Mapping[str, str] | None = None,
                local_binaries: Mapping[str, dict] | None = None) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(fields, attributes, names) for a DocumentReference or DiagnosticReport; raises RecordError for a bad one."""
    res = check_resource(resource)
    if res.get("status") == "entered-in-error" or res.get("docStatus") == "entered-in-error":
        raise RecordError(Q_UNSUPPORTED_CONTENT, "document status is entered-in-error")
    fields: dict[str, Any] = {}
    if res.get("id") is not None:
        fields["note_id"] = res["id"]
    fields["text"] = _text(res, cfg, local_binaries)
    validate_structure(res)  # after the checks that give a more specific reason
    patient = _patient(res, patient_refs)
    if patient is not None:
        fields["patient_id"] = patient
    note_type = _concept(res, "type" if res["resourceType"] == DOCUMENT_REFERENCE else "code")
    if note_type is not None:
        fields["note_type"] = note_type
    date, date_name = _date(res)
    if date is not None:
        fields["note_date"] = date
    _, attributes = map_source_record(res, {}, cfg.passthrough_fields)
    attributes = {**_metadata(res), **attributes}
    text_field = "presentedForm" if res["resourceType"] == DIAGNOSTIC_REPORT else "content.attachment"
    names = {"note_id": "id", "patient_id": "subject.reference", "text": text_field, "note_date": date_name, "note_type": "type"}
    return fields, attributes, names


# The name the readers used before DiagnosticReport was read.
document_reference_fields = note_fields
