"""Realistic surrogates: the same PHI value always gets the same replacement for one patient.

Every choice is a keyed hash (HMAC-SHA256) of the secret key, the patient id and the value, so a
run is reproducible with the key and cannot be reversed without it. Dates move back by a per-patient
offset of 1..``max_shift_days`` days and keep their format ("7/22" stays "m/d", "Nov 3rd, 2019"
stays "Mon Dth, YYYY"), so intervals between a patient's dates are preserved.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import hmac
import re
from functools import lru_cache

from clinitune.phi.lexicons import _read_ordered, load
from clinitune.phi.types import PhiType

_MONTHS = [m.lower() for m in calendar.month_name[1:]]
_ABBR = [m.lower() for m in calendar.month_abbr[1:]]
_MONTH_LOOKUP = {m: i + 1 for i, m in enumerate(_MONTHS)}
_MONTH_LOOKUP.update({m: i + 1 for i, m in enumerate(_ABBR)})
_MONTH_LOOKUP["sept"] = 9
# Words of a place that do not identify it and stay as they are ("Hospital", "St.", "Rm").
_PLACE_KEEP = frozenset(
    """hospital hosp medical center centre ctr clinic rehab rehabilitation nursing home house manor hospice
    health healthcare infirmary institute regional memorial general community county university st saint
    mount mt of the and & rm room bed unit floor street ave avenue road rd blvd boulevard drive dr lane ln
    way court ct place pl apt suite ste north south east west upper lower new city family practice associates
    internal medicine care senior living""".split()
)
_STATE_ABBR = frozenset(
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK OR PA RI "
    "SC SD TN TX UT VT VA WA WV WI WY DC PR".split())
_RESTRICTED_ZIP3 = frozenset("036 059 063 102 203 556 692 790 821 823 830 831 878 879 884 890 893".split())
_REF_YEAR = 2000  # a leap year: "2/29" without a year still parses


@lru_cache(maxsize=1)
def _pools() -> tuple[list[str], list[str], list[str]]:
    first = [w for w in _read_ordered("first_names.txt.gz")[:3000] if w.isalpha() and len(w) > 2]
    last = [w for w in _read_ordered("last_names.txt.gz")[:5000] if w.isalpha() and len(w) > 2]
    places = sorted(p for p in load().places if p.isalpha() and 4 <= len(p) <= 12)
    return first, last, places


def _like(template: str, word: str) -> str:
    """``word`` written with the casing of ``template``."""
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template.islower():
        return word.lower()
    return word[:1].upper() + word[1:].lower()


def _ordinal(n: int) -> str:
    if 11 <= n % 100 <= 13:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _full_year(digits: str) -> int:
    return int(digits) if len(digits) == 4 else (1900 if int(digits) > 30 else 2000) + int(digits)


class Surrogator:
    """Makes consistent surrogates for one patient (or one note when no patient id is known)."""

    def __init__(self, key: bytes, scope: str, max_shift_days: int = 365):
        self._key = key
        self._scope = scope.encode("utf-8", "surrogatepass")
        self.shift_days = 1 + self._int("date-shift") % max_shift_days

    def _int(self, *parts: str) -> int:
        msg = self._scope + b"\x1f" + "\x1f".join(parts).encode("utf-8", "surrogatepass")
        return int.from_bytes(hmac.new(self._key, msg, hashlib.sha256).digest()[:8], "big")

    def _pick(self, pool: list[str], *parts: str) -> str:
        return pool[self._int(*parts) % len(pool)]

    def replace(self, kind: str, value: str) -> str:
        fn = {
            PhiType.NAME.value: self.name,
            PhiType.LOCATION.value: self.location,
            PhiType.DATE.value: self.date,
            PhiType.YEAR.value: self.year,
            PhiType.AGE.value: self.age,
            PhiType.ZIP.value: self.zip,
            PhiType.EMAIL.value: self.email,
            PhiType.URL.value: self.url,
            PhiType.IP.value: self.ip,
        }.get(kind, self.code)
        return fn(value)

    # --- names, places, codes -------------------------------------------------------------------
    def name(self, value: str) -> str:
        first, last, _ = _pools()
        lx = load()
        out = []
        for part in re.split(r"([^A-Za-z']+)", value):
            if not part or not re.match(r"[A-Za-z]", part):
                out.append(part)
                continue
            key = part.lower().replace("'", "")
            if len(key) == 1:  # an initial stays an initial
                out.append(_like(part, chr(ord("a") + self._int("initial", key) % 26)))
            else:
                pool = first if key in lx.first and key not in lx.common_last else last
                out.append(_like(part, self._pick(pool, "name", key)))
        return "".join(out)

    def location(self, value: str) -> str:
        _, _, places = _pools()
        out = []
        for part in re.split(r"([^A-Za-z0-9'&]+)", value):
            low = part.lower()
            if not part or not re.search(r"[A-Za-z0-9]", part) or low in _PLACE_KEEP or part in _STATE_ABBR \
                    or low in load().states:  # a state is not an identifier
                out.append(part)
            elif re.fullmatch(r"\d+[A-Za-z]?", part) or (part.isupper() and len(part) <= 6):
                out.append(self.code(part))  # room and street numbers, "GH", "MGH"
            else:
                out.append(_like(part, self._pick(places, "place", low)))
        return "".join(out)

    def code(self, value: str) -> str:
        """Same shape: digits stay digits, letters stay letters (with their case), the rest as is."""
        out = []
        for i, ch in enumerate(value):
            r = self._int("code", value.lower(), str(i))
            if ch.isdigit():
                out.append(str((int(ch) + 1 + r % 9) % 10))
            elif ch.isascii() and ch.isalpha():
                c = chr(ord("a") + (ord(ch.lower()) - 97 + 1 + r % 25) % 26)
                out.append(c.upper() if ch.isupper() else c)
            else:
                out.append(ch)
        return "".join(out)

    def zip(self, value: str) -> str:
        """HIPAA's 3-digit rule: keep the first three digits unless that area is restricted."""
        digits = re.sub(r"\D", "", value)
        head = "000" if digits[:3] in _RESTRICTED_ZIP3 else digits[:3]
        return head + "00" + ("-0000" if "-" in value else "")

    def age(self, value: str) -> str:
        return re.sub(r"\d+", "90+", value, count=1)  # Safe Harbor: "90 or older"

    def email(self, value: str) -> str:
        first, last, _ = _pools()
        key = value.lower()
        return f"{self._pick(first, 'email', key)}.{self._pick(last, 'email2', key)}@example.org"

    def url(self, value: str) -> str:
        scheme = re.match(r"[a-z]+://", value, re.I)
        path = self.code(re.sub(r"[^A-Za-z0-9]", "", value))[:10].lower()
        return f"{scheme.group() if scheme else 'https://'}example.org/{path}"

    def ip(self, value: str) -> str:
        if ":" in value:
            return f"2001:db8::{self._int('ip6', value) % 65535:x}"
        return f"192.0.2.{1 + self._int('ip', value) % 254}"

    # --- dates ----------------------------------------------------------------------------------
    def year(self, value: str) -> str:
        delta = (self.shift_days + 182) // 365
        m = re.search(r"\d+", value)
        if not m or len(m.group()) not in (2, 4):
            return value
        digits = m.group()
        new = str(int(digits) - delta) if len(digits) == 4 else f"{(int(digits) - delta) % 100:02d}"
        if value.lower().rstrip("'").endswith("s"):
            new = new[:-1] + "0"  # a decade stays a decade
        return value[:m.start()] + new + value[m.end():]

    def _shift(self, y: int, m: int, d: int) -> dt.date:
        return dt.date(y, m, d) - dt.timedelta(days=self.shift_days)

    def date(self, value: str) -> str:
        for fn in (self._numeric_date, self._named_date, self._ordinal_date):
            try:
                out = fn(value)
            except (ValueError, OverflowError):
                out = None
            if out is not None:
                return out
        return self.code(value)  # an unusual form: same shape, new digits

    def _numeric_date(self, value: str) -> str | None:
        m = re.fullmatch(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})([T ][0-9:.,+\- ZUTC]+)?", value)
        if m:  # ISO 8601, with a time and zone kept as they are
            new = self._shift(int(m.group(1)), int(m.group(3)), int(m.group(4)))
            w3, w4 = len(m.group(3)), len(m.group(4))
            return f"{new.year}{m.group(2)}{new.month:0{w3}d}{m.group(2)}{new.day:0{w4}d}{m.group(5) or ''}"
        m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})(T[0-9:+\-Z]+)?", value)
        if m:  # ISO 8601 basic format: "20210518", "20210518T093000Z"
            new = self._shift(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            return f"{new.year}{new.month:02d}{new.day:02d}{m.group(4) or ''}"
        m = re.fullmatch(r"(\d{4})-(\d{2})", value)
        if m:  # a FHIR partial date: year and month
            new = self._shift(int(m.group(1)), int(m.group(2)), 15)
            return f"{new.year}-{new.month:02d}"
        m = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{1,2})/(\d{1,2})", value)
        if m:  # two dates run together: "10/03/10/04"
            return f"{self._numeric_date(m.group(1) + '/' + m.group(2))}/{self._numeric_date(m.group(3) + '/' + m.group(4))}"
        m = re.fullmatch(r"(\d{1,2})/(\d{4}|\d{2})", value)
        if m and (len(m.group(2)) == 4 or int(m.group(2)) > 31):  # month/year: "8/84"
            new = self._shift(_full_year(m.group(2)), int(m.group(1)), 15)
            mtxt = f"{new.month:02d}" if m.group(1).startswith("0") else str(new.month)
            return f"{mtxt}/{new.year if len(m.group(2)) == 4 else f'{new.year % 100:02d}'}"
        m = re.fullmatch(r"(\d{1,2})([/.-])(\d{1,2})(?:([/.-])(\d{2}|\d{4}))?", value)
        if not m:
            return None
        a, sep, b, sep2, y = m.groups()
        dmy = (sep == "." or int(a) > 12) and y is not None and len(y) == 4  # "18.05.2021", "18/05/2021"
        month, day = (int(b), int(a)) if dmy else (int(a), int(b))
        new = self._shift(_full_year(y) if y else _REF_YEAR, month, day)
        first, second = (new.day, new.month) if dmy else (new.month, new.day)
        width = 2 if a.startswith("0") or b.startswith("0") else 1  # zero-padded dates stay padded
        out = f"{first:0{width}d}{sep}{second:0{width}d}"
        if y is not None:
            out += sep2 + (f"{new.year % 100:02d}" if len(y) == 2 else str(new.year))
        return out

    def _named_date(self, value: str) -> str | None:
        mon = None
        for m in re.finditer(r"[A-Za-z]+\.?", value):
            if m.group().lower().rstrip(".") in _MONTH_LOOKUP:
                mon = m
                break
        if mon is None:
            return None
        month = _MONTH_LOOKUP[mon.group().lower().rstrip(".")]
        day_tok = year_tok = None
        for m in re.finditer(r"'?\d+(?:st|nd|rd|th)?", value, re.I):
            tok, digits = m.group(), re.sub(r"\D", "", m.group())
            if tok.startswith("'") or len(digits) == 4:
                year_tok = year_tok or m
            elif re.search(r"[a-z]", tok, re.I) or (day_tok is None and int(digits) <= 31 and len(digits) <= 2):
                day_tok = day_tok or m
            elif len(digits) == 2:
                year_tok = year_tok or m
        year = _full_year(re.sub(r"\D", "", year_tok.group())) if year_tok else _REF_YEAR
        day = int(re.sub(r"\D", "", day_tok.group())) if day_tok else 15
        new = self._shift(year, month, min(day, calendar.monthrange(year, month)[1]))
        word = mon.group()
        plain = word.rstrip(".").lower()
        name = (_MONTHS if plain in _MONTHS else _ABBR)[new.month - 1]
        if plain == "sept" and new.month == 9:
            name = "sept"
        repl = {mon.start(): (mon.end(), _like(word.rstrip("."), name) + ("." if word.endswith(".") else ""))}
        if day_tok:
            tok = day_tok.group()
            digits = re.sub(r"\D", "", tok)
            dtxt = f"{new.day:02d}" if len(digits) == 2 and digits[0] == "0" else str(new.day)
            suffix = tok[len(digits):]
            if suffix:
                suffix = _ordinal(new.day).upper() if suffix.isupper() else _ordinal(new.day)
            repl[day_tok.start()] = (day_tok.end(), dtxt + suffix)
        if year_tok:
            digits = re.sub(r"\D", "", year_tok.group())
            ytxt = str(new.year) if len(digits) == 4 else f"{new.year % 100:02d}"
            repl[year_tok.start()] = (year_tok.end(), ("'" if year_tok.group().startswith("'") else "") + ytxt)
        out, i = [], 0
        while i < len(value):
            if i in repl:
                end, txt = repl[i]
                out.append(txt)
                i = end
            else:
                out.append(value[i])
                i += 1
        return "".join(out)

    def _ordinal_date(self, value: str) -> str | None:
        m = re.fullmatch(r"(\d{1,2})(st|nd|rd|th)", value, re.I)
        if not m or not 1 <= int(m.group(1)) <= 31:
            return None
        new = self._shift(_REF_YEAR, 1, int(m.group(1)))
        suffix = _ordinal(new.day)
        return f"{new.day}{suffix.upper() if m.group(2).isupper() else suffix}"
