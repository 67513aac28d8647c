"""The one normalisation and validation path every format goes through.

A format reader turns each physical record into a :class:`RawRecord`: either the record's
fields under canonical names (plus passthrough attributes), or an early verdict (``reason``)
when the record could not even be parsed. :func:`records_to_frame` validates and normalises
them into rows of ``schema.RECORD_SCHEMA``, one row per RawRecord, in order.

Row rules:

* ``ok`` rows: text as read (not stripped), ids as strings, ``note_date`` as ``YYYY-MM-DD`` or
  null, ``attributes`` a JSON object string, ``reason``/``detail`` null.
* ``quarantined`` rows: ``reason`` is a ``Q_*`` code, ``detail`` a short description naming
  fields and types only, never a value. ``text`` is always null (the quarantine is not
  de-identified; ``location`` points at the source record); ids are kept when they are valid.
* A missing note id is replaced by the record's deterministic ``fallback_id``.
* Empty strings count as missing for every field.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from clinitune.curate.readers.config import ReaderConfig
from clinitune.curate.readers.dates import _type_name, parse_date
from clinitune.errors import RecordError
from clinitune.schema import (
    Q_EMPTY_TEXT, Q_INVALID_ENCODING, Q_MISSING_PATIENT, Q_TEXT_TOO_LONG, Q_WRONG_TYPE, RECORD_SCHEMA,
    STATUS_OK, STATUS_QUARANTINED,
)

COLUMNS = list(RECORD_SCHEMA.names)


@dataclass
class RawRecord:
    """One physical input record, before validation."""

    location: str  # "path:LINE", "path:row N", "path#entry N" or "path"
    fallback_id: str  # deterministic note id used when the record has none
    fields: dict[str, Any] | None = None  # canonical name -> raw value; absent key = missing
    attributes: dict[str, Any] | None = None  # passthrough field -> raw value (present ones only)
    names: Mapping[str, str] | None = None  # canonical -> source name, for messages
    reason: str | None = None  # set when the record failed before validation
    detail: str | None = None


def file_tag(path: str) -> str:
    """``<stem>-<8 hex of sha256(path)>``: the prefix of synthetic note ids, unique per input file."""
    stem = os.path.basename(path).rsplit(".", 1)[0] or "file"
    return f"{stem}-{hashlib.sha256(path.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"


def quarantined(location: str, fallback_id: str, reason: str, detail: str, note_id: Any = None) -> RawRecord:
    """A record that failed before validation (``note_id``, when usable, still names it)."""
    fields = {"note_id": note_id} if note_id is not None else None
    return RawRecord(location=location, fallback_id=fallback_id, fields=fields, reason=reason, detail=detail)


def _lookup(record: Mapping[str, Any], name: str, lowered: dict[str, str] | None) -> tuple[bool, Any, dict[str, str] | None]:
    if name in record:
        return True, record[name], lowered
    if lowered is None:
        lowered = {}
        for key in record:
            if isinstance(key, str):
                lowered.setdefault(key.lower(), key)
    key = lowered.get(name.lower())
    return (key is not None), (record[key] if key is not None else None), lowered


def map_source_record(record: Mapping[str, Any], mapping: Mapping[str, str], passthrough: Iterable[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Pick the canonical fields and passthrough attributes out of a source record.

    Names match exactly first, then case-insensitively (``SUBJECT_ID`` finds ``subject_id``);
    a mapped field absent under its source name is looked up under its canonical name, so a
    preset does not break files that already use canonical names. Absent or null fields stay
    out of the result.
    """
    lowered: dict[str, str] | None = None
    fields: dict[str, Any] = {}
    for canon, src in mapping.items():
        found, value, lowered = _lookup(record, src, lowered)
        if not found and src != canon:
            found, value, lowered = _lookup(record, canon, lowered)
        if found and not _is_null(value):
            fields[canon] = value
    attributes: dict[str, Any] = {}
    for name in passthrough:
        found, value, lowered = _lookup(record, name, lowered)
        if found and not _is_null(value) and value != "":
            attributes[name] = value
    return fields, attributes


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _utf8_ok(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: undecodable bytes or bad \\u escapes
        return False
    return True


def _name(rec: RawRecord, canon: str) -> str:
    """``'TEXT' (text)`` for a mapped field, ``'text'`` otherwise: how details name a field."""
    src = (rec.names or {}).get(canon, canon)
    return f"'{src}'" if src == canon else f"'{src}' ({canon})"


def _text(rec: RawRecord, fields: dict[str, Any], cfg: ReaderConfig) -> str:
    name = _name(rec, "text")
    if "text" not in fields:
        raise RecordError(Q_EMPTY_TEXT, f"field {name} is missing")
    value = fields["text"]
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode(cfg.encoding)
        except UnicodeDecodeError:
            raise RecordError(Q_INVALID_ENCODING, f"field {name} is not valid {cfg.encoding}") from None
    if not isinstance(value, str):
        raise RecordError(Q_WRONG_TYPE, f"field {name} is {_type_name(value)}, expected string")
    if not _utf8_ok(value):
        raise RecordError(Q_INVALID_ENCODING, f"field {name} holds characters invalid in {cfg.encoding}")
    if not value.strip():
        raise RecordError(Q_EMPTY_TEXT, f"field {name} is empty or whitespace only")
    if len(value) > cfg.max_text_chars:
        raise RecordError(Q_TEXT_TOO_LONG, f"field {name} has {len(value)} characters, over the limit of {cfg.max_text_chars}")
    return value


def _identifier(rec: RawRecord, fields: dict[str, Any], canon: str) -> str | None:
    """An id: a non-empty string or an integer (integral floats too, as Parquet nulls make them)."""
    if canon not in fields:
        return None
    value = fields[canon]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RecordError(Q_WRONG_TYPE, f"field {_name(rec, canon)} is {_type_name(value)}, expected string or integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise RecordError(Q_WRONG_TYPE, f"field {_name(rec, canon)} is a non-integral float, expected string or integer")
        value = int(value)
    out = str(value).strip()
    if out and not _utf8_ok(out):
        raise RecordError(Q_INVALID_ENCODING, f"field {_name(rec, canon)} holds invalid characters")
    return out or None


def _optional_str(rec: RawRecord, fields: dict[str, Any], canon: str) -> str | None:
    value = fields.get(canon)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(Q_WRONG_TYPE, f"field {_name(rec, canon)} is {_type_name(value)}, expected string")
    if not _utf8_ok(value):
        raise RecordError(Q_INVALID_ENCODING, f"field {_name(rec, canon)} holds invalid characters")
    return value.strip() or None


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _attributes(attrs: dict[str, Any] | None) -> str:
    if not attrs:
        return "{}"
    out = json.dumps(attrs, default=_json_default, ensure_ascii=False, sort_keys=True, allow_nan=False)
    if not _utf8_ok(out):
        raise RecordError(Q_INVALID_ENCODING, "a passthrough field holds invalid characters")
    return out


def validate_record(rec: RawRecord, cfg: ReaderConfig, source: str) -> tuple:
    """One output row (a tuple in ``COLUMNS`` order) for one RawRecord. Raises nothing for bad data."""
    note_id: str | None = None
    patient_id: str | None = None
    reason, detail = rec.reason, rec.detail
    if reason is not None and rec.fields:  # failed early: still name the note when its id is usable
        try:
            note_id = _identifier(rec, rec.fields, "note_id")
        except RecordError:
            pass
    if reason is None:
        fields = rec.fields or {}
        try:
            try:
                note_id = _identifier(rec, fields, "note_id")
            finally:
                note_id = note_id or rec.fallback_id
            patient_id = _identifier(rec, fields, "patient_id")
            text = _text(rec, fields, cfg)
            if patient_id is None:
                raise RecordError(Q_MISSING_PATIENT, f"field {_name(rec, 'patient_id')} is missing or empty")
            note_type = _optional_str(rec, fields, "note_type")
            note_date = parse_date(fields.get("note_date"), _name(rec, "note_date"))
            try:
                attributes = _attributes(rec.attributes)
            except (ValueError, TypeError, RecursionError):  # NaN/inf, odd keys, absurd nesting
                raise RecordError(Q_WRONG_TYPE, "a passthrough field holds a value that is not plain JSON") from None
            return (note_id, patient_id, text, note_type, note_date, source, attributes, STATUS_OK, None, rec.location, None)
        except RecordError as err:
            reason, detail = err.reason, err.detail
    return (note_id or rec.fallback_id, patient_id, None, None, None, source, "{}", STATUS_QUARANTINED, reason, rec.location, detail)


def _frame(rows: list[tuple]) -> pd.DataFrame:
    data = np.empty((len(rows), len(COLUMNS)), dtype=object)
    for i, row in enumerate(rows):
        data[i, :] = row
    return pd.DataFrame(data, columns=COLUMNS, dtype=object, copy=False)


def empty_frame() -> pd.DataFrame:
    return _frame([])


def records_to_frame(records: Iterable[RawRecord], cfg: ReaderConfig, source: str) -> pd.DataFrame:
    """Validate ``records`` into a DataFrame with exactly ``COLUMNS`` (object dtype, None for null)."""
    return _frame([validate_record(r, cfg, source) for r in records])
