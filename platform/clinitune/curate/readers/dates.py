"""Note dates: many source forms in, ``YYYY-MM-DD`` (or null) out.

Accepted: ISO dates (``2020-01-31``), ISO / FHIR dateTimes with optional fraction and zone
(``2020-01-31T10:00:00.5Z``, ``2020-01-31 10:00:00``), ``YYYY/MM/DD``, US ``MM/DD/YYYY`` with an
optional time and AM/PM, compact ``YYYYMMDD`` (HL7), and date/datetime objects (Parquet).
A datetime keeps the calendar date as written: zones are not converted. FHIR partial dates
(``2020`` or ``2020-01``) carry no day, so they give null rather than an invented day.
Anything else raises ``RecordError(unparseable_date)``; a non-string scalar raises ``wrong_type``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from clinitune.errors import RecordError
from clinitune.schema import Q_BAD_DATE, Q_WRONG_TYPE

_TIME = r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,]\d{1,9})?)?\s*(?:([AaPp][Mm])|Z|[+-]\d{2}(?::?\d{2})?)?)?"
_YMD = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})" + _TIME)
_YMD_SLASH = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})" + _TIME)
_MDY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})" + _TIME)
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?")
_PARTIAL = re.compile(r"(\d{4})(?:-(\d{2}))?")


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", bool: "bool", int: "int", float: "float"}.get(type(value), type(value).__name__)


def _check_time(hour: str | None, minute: str | None, second: str | None, ampm: str | None) -> None:
    if hour is None:
        return
    h, m, s = int(hour), int(minute or 0), int(second or 0)
    limit = 12 if ampm else 24
    if not (0 <= h <= limit and m <= 59 and s <= 60) or (h == 24 and (m or s)):
        raise ValueError("time out of range")


def _ymd(y: str, m: str, d: str) -> str:
    return dt.date(int(y), int(m), int(d)).isoformat()


def parse_date(value: Any, field: str = "'note_date'") -> str | None:
    """Normalise a source date to ``YYYY-MM-DD``; None/empty give None. Never echoes the value."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):  # pandas Timestamp too
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, str):
        if type(value).__name__ == "NaTType":
            return None
        raise RecordError(Q_WRONG_TYPE, f"field {field} is {_type_name(value)}, expected a date string")
    s = value.strip()
    if not s:
        return None
    try:
        if m := _YMD.fullmatch(s):
            _check_time(m[4], m[5], m[6], m[7])
            return _ymd(m[1], m[2], m[3])
        if m := _YMD_SLASH.fullmatch(s):
            _check_time(m[4], m[5], m[6], m[7])
            return _ymd(m[1], m[2], m[3])
        if m := _MDY.fullmatch(s):
            _check_time(m[4], m[5], m[6], m[7])
            return _ymd(m[3], m[1], m[2])
        if m := _COMPACT.fullmatch(s):
            _check_time(m[4], m[5], m[6], None)
            return _ymd(m[1], m[2], m[3])
        if m := _PARTIAL.fullmatch(s):
            if m[2] is not None and not 1 <= int(m[2]) <= 12:
                raise ValueError("month out of range")
            return None
    except ValueError:
        raise RecordError(Q_BAD_DATE, f"field {field} is not a valid calendar date") from None
    raise RecordError(Q_BAD_DATE, f"field {field} is not in a recognised date format")
