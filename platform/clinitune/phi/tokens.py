"""Words of a note with their offsets, and the note's casing (mixed, ALL CAPS or lower case)."""

from __future__ import annotations

import re

# Letters of any script ("Şaban", "Sólver", "Veysəl"): names of many origins are one word each.
_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W\d_]+)*")
_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")


class Tok:
    """A word of the note. ``low`` is lower case without a possessive; a word holding digits
    ("SaO2", "2L", "Q3") keeps them in ``low`` and is never a name, except a place name with a
    unit number glued on ("QUARTERMAIN7"), whose letters are in ``stem``."""

    __slots__ = ("start", "end", "text", "low", "stem")

    def __init__(self, start: int, end: int, text: str, low: str, stem: str):
        self.start, self.end, self.text, self.low, self.stem = start, end, text, low, stem


_UNIT_GLUED = re.compile(r"([^\W\d_]{4,})(\d{1,2})")


_NORM: dict[str, tuple[str, str]] = {}  # word -> (low, stem); words repeat a lot across notes


def _normalise(t: str) -> tuple[str, str]:
    low = t.lower().replace("’", "'")
    if low.endswith("'s"):
        low = low[:-2]
    if "'" in low:
        low = low.replace("'", "")  # O'Brien, O'Rourke: the Census spells them without it
    stem = ""
    if not low.isalpha():
        g = _UNIT_GLUED.fullmatch(low)
        stem = g.group(1) if g else ""
        if low and not low[0].isalpha():
            low = "#" + low  # a number or a measurement: never a word of a name
    return low, stem


def tokenize(text: str) -> list[Tok]:
    out = []
    cache = _NORM
    for m in _TOKEN.finditer(text):
        t = m.group()
        norm = cache.get(t)
        if norm is None:
            norm = _normalise(t)
            if len(cache) < 300_000:
                cache[t] = norm
        out.append(Tok(m.start(), m.end(), t, norm[0], norm[1]))
    return out


def casing(text: str) -> str:
    """'upper', 'lower' or 'mixed': whether capital letters carry information in this note."""
    up = len(_UPPER.findall(text))
    lo = len(_LOWER.findall(text))
    if up + lo == 0:
        return "mixed"
    r = up / (up + lo)
    return "upper" if r > 0.6 else ("lower" if r < 0.02 else "mixed")


def wordy(w: str) -> bool:
    """A word made of letters (an inner apostrophe allowed), not a number or a code."""
    return w.isalpha() or (w.replace("'", "").isalpha() and w[0] != "'")
