"""Re-surrogating annotated notes: every gold PHI value replaced by a value of the same kind.

``resurrogate(note, pool, rng, keep_layout=...)`` returns a new note whose gold spans point at the
new values. With ``keep_layout`` (the evaluation variants) a value keeps its shape: a one-word name
stays one word, "3/12" stays month/day, a phone keeps its digit groups, an id its letter/digit
pattern, the casing of the original is kept. Without it (training copies) a value may also take
any other layout of its kind, so the tagger learns the context of a mention rather than its form.
"""

from __future__ import annotations

import random
import re
import string

from clinitune.phi.surrogate import Surrogator
from clinitune.phi.training.corpus import GoldNote
from clinitune.phi.training.pools import Pool, shaped

_ID_KINDS = frozenset({"MRN", "ID", "ACCOUNT", "HEALTH_PLAN", "LICENSE", "DEVICE", "VEHICLE", "BIOMETRIC", "SSN"})


def _cased(template: str, value: str) -> str:
    """``value`` in the casing of ``template`` (ALL CAPS, lower case, or as generated)."""
    letters = [c for c in template if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return value.upper()
    if letters and all(c.islower() for c in letters):
        return value.lower()
    return value


def _shape_of(value: str) -> str:
    return re.sub(r"[A-Za-z]", "A", re.sub(r"\d", "N", value))


def _same_shape(value: str, rng: random.Random) -> str:
    new = shaped(_shape_of(value), rng)
    return "".join(n.lower() if o.islower() else n for o, n in zip(value, new))


def _name(original: str, pool: Pool, rng: random.Random, keep_layout: bool) -> str:
    words = original.split()
    if len(original.rstrip(".")) == 1:  # an initial
        return rng.choice(string.ascii_uppercase) + ("." if original.endswith(".") else "")
    if not keep_layout and rng.random() < 0.3:
        return pool.value("NAME", rng)
    if len(words) == 1:
        return pool.first(rng) if rng.random() < 0.5 else pool.last(rng)
    return " ".join([pool.first(rng)] + [pool.last(rng) for _ in words[1:]])


def _location(original: str, pool: Pool, rng: random.Random, keep_layout: bool) -> str:
    if not keep_layout and rng.random() < 0.3:
        return pool.location(rng)
    letters = re.sub(r"[^A-Za-z]", "", original)
    digits = re.search(r"\d+", original)
    if 1 <= len(letters) <= 5 and original.replace(".", "").isupper() and not digits:
        return pool.abbreviation(rng)  # "GH", "MGH"
    if digits:
        word = pool.last(rng).split()[0]
        glue = "" if re.search(r"[A-Za-z]\d", original) else " "
        return f"{word}{glue}{rng.randint(1, 12)}"  # a unit: "Quartermain 3", "KERNWOOD7"
    if len(original.split()) == 1:
        return rng.choice((pool.city(rng).split()[0], pool.last(rng).split()[0]))
    return pool.hospital(rng) if rng.random() < 0.5 else pool.city(rng)


def _date(original: str, pool: Pool, rng: random.Random, keep_layout: bool, shifter: Surrogator) -> str:
    if not keep_layout and rng.random() < 0.5:
        return pool.date(rng)
    new = shifter.date(original)
    return new if new != original else pool.date(rng)


def _year(original: str, pool: Pool, rng: random.Random, keep_layout: bool) -> str:
    if not keep_layout and rng.random() < 0.3:
        return pool.year(rng)
    y = rng.randint(1930, 2035)
    m = re.fullmatch(r"(')?(\d{2}|\d{4})(s|'s)?", original)
    if not m:
        return pool.year(rng)
    if len(m.group(2)) == 2:
        return f"{m.group(1) or ''}{y % 100:02d}{m.group(3) or ''}"
    return f"{y // 10 * 10 if m.group(3) else y}{m.group(3) or ''}"


def replacement(kind: str, original: str, pool: Pool, rng: random.Random, keep_layout: bool,
                shifter: Surrogator) -> str:
    """A new value of ``kind`` for the gold value ``original``."""
    if kind == "NAME":
        new = _name(original, pool, rng, keep_layout)
    elif kind == "LOCATION":
        new = _location(original, pool, rng, keep_layout)
    elif kind == "DATE":
        new = _date(original, pool, rng, keep_layout, shifter)
    elif kind == "YEAR":
        new = _year(original, pool, rng, keep_layout)
    elif kind == "AGE":
        new = str(rng.randint(90, 115))
    elif kind in ("PHONE", "FAX") or kind in _ID_KINDS or kind == "ZIP":
        new = _same_shape(original, rng) if keep_layout or rng.random() < 0.5 else pool.value(kind, rng)
    else:
        new = pool.value(kind, rng)
    return _cased(original, new)


def resurrogate(note: GoldNote, pool: Pool, rng: random.Random, *, keep_layout: bool, suffix: str) -> GoldNote:
    """A copy of ``note`` with every gold value replaced; its spans point at the new values."""
    shifter = Surrogator(rng.randbytes(16), f"note:{note.note_id}", max_shift_days=3650)
    out, spans, pos = [], [], 0
    for s, e, kind in sorted(note.spans):
        if s < pos:  # overlapping gold spans: keep the first
            continue
        out.append(note.text[pos:s])
        new = replacement(kind, note.text[s:e], pool, rng, keep_layout, shifter)
        start = sum(len(x) for x in out)
        out.append(new)
        spans.append((start, start + len(new), kind))
        pos = e
    out.append(note.text[pos:])
    return GoldNote(f"{note.note_id}{suffix}", note.patient_id, "".join(out), spans, note.source)
