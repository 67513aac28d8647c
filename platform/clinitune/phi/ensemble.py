"""Ensemble of the learned tagger and the rules: what either finds is PHI (recall first), and a
name grows over the name words next to it.

The tagger's spans are typed: before the union, each must be a plausible value of its kind (a
date has date-like digits or a month, an age over 89 is a number over 89, a phone has four digits
or more, a name has a letter and is not only function words or clinical vocabulary) — the kinds'
definitions, not a list of past mistakes; in a note whose casing carries information a name has a
capital and is not an unknown short acronym; a field label ("MRN") is no name, and two numbers
are a date only as a month and a day or with a year ("118/72" is a blood pressure); a drug name
is no person's or place's name. The union and its overlaps are resolved by the engine's merge
(longest span, most specific kind, highest score). Then a NAME span is extended over adjacent
words that the tagger gives a fair chance of being a name, or that the rules' lists and the
note's casing make a name: a first name found means its surname is found ("Karena Jones"), an
initial before a surname goes with it ("J. Quenneville").
"""

from __future__ import annotations

import bisect
import re
from functools import lru_cache

from clinitune.phi.cues import CARE_ABBR, CREDENTIALS, RELATIVES, TITLES
from clinitune.phi.lexicons import STOPWORDS, Lexicons
from clinitune.phi.patterns import ID_KEYWORDS
from clinitune.phi.tagger import Tagged
from clinitune.phi.tokens import Tok, casing, wordy
from clinitune.phi.types import Span
from clinitune.terminology.systems import CODE_SHAPE

Hit = tuple[int, int, str, float]
NAME_NEIGHBOUR_PROB = 0.12  # P(NAME) of a word next to a name that is enough to take it in
_GAP = re.compile(r"[ \t]{1,2}|-|[ \t]?-[ \t]?|\.[ \t]{1,2}")


_MONTH = re.compile(r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?(?![a-z])", re.I)
_NUMERIC_DATE = re.compile(r"\d{1,4}\s?[/.-]\s?\d{1,2}(?:\s?[/.-]\s?\d{2,4})?|(?:19|20)\d{6}|\d{1,2}(?:st|nd|rd|th)\b", re.I)
_WORDS = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_FIELD_LABEL = re.compile(r"(?:" + "|".join(kw for _, kw in ID_KEYWORDS) + r")\.?", re.I)
_PARTS = re.compile(r"\d+")
_NUMBERS_ONLY = re.compile(r"[\d\s/.-]+")


def _calendar(value: str) -> bool:
    """Can a numeric date-like string be a calendar date? Two numbers need a month (1-12) and a
    day (1-31) in either order, or a year with a month ('118/72' is a blood pressure, '1900-0700'
    a shift); ordinals and eight-digit dates pass."""
    parts = [int(p) for p in _PARTS.findall(value)]
    if len(parts) != 2:
        return True
    a, b = parts
    return ((1 <= a <= 12 and 1 <= b <= 31) or (1 <= a <= 31 and 1 <= b <= 12)
            or (a >= 1000 and 1 <= b <= 12) or (b >= 1000 and 1 <= a <= 12))


@lru_cache(maxsize=1)
def drug_words() -> frozenset[str]:
    """The drug lexicon's single words (loaded once per process, ~2 s)."""
    from clinitune.phi.lexicons import load
    from clinitune.terminology.drugs import drug_names

    return drug_names(load().english)


def plausible(kind: str, value: str, lex: Lexicons) -> bool:
    """Can ``value`` be PHI of ``kind`` at all (by the kind's definition)?"""
    digits = sum(c.isdigit() for c in value)
    if CODE_SHAPE.match(value.strip()):  # a code (E11.9, S72.001A) is clinical content, never PHI
        return False
    if kind == "DATE":
        if _NUMBERS_ONLY.fullmatch(value.strip()):
            return bool(_NUMERIC_DATE.search(value)) and _calendar(value)
        return bool(_MONTH.search(value)) or any(_calendar(m.group()) for m in _NUMERIC_DATE.finditer(value))
    if kind == "YEAR":
        return 2 <= digits <= 4
    if kind == "AGE":
        return any(int(n) >= 90 for n in re.findall(r"\d{2,3}", value))
    if kind in ("PHONE", "FAX"):
        return digits >= 4
    if kind == "ZIP":
        return digits in (5, 9)
    if kind in ("NAME", "LOCATION"):
        if _FIELD_LABEL.fullmatch(value.strip()):  # "MRN", "Acct": the label of an identifier field, not its value
            return False
        words = [w.lower().replace("’", "'") for w in _WORDS.findall(value)]
        named = [w for w in words if len(w) > 1]
        if named and all(w in drug_words() and not lex.is_name(w) for w in named):  # "VENTOLIN", "Phenergan"
            return False
        if kind == "NAME" and named and all(w in RELATIVES or w in CREDENTIALS for w in named):  # "GRANDAUGHTER"
            return False
        return any(len(w) > 1 and w not in STOPWORDS and w not in lex.clinical and w not in CARE_ABBR
                   and (kind != "NAME" or w not in TITLES) for w in words) or (
            kind == "NAME" and bool(re.fullmatch(r"[A-Z]\.?", value.strip())))
    if kind in ("EMAIL", "URL"):
        return "@" in value or "." in value
    if kind == "IP":
        return digits >= 4
    return digits >= 3 or (digits >= 1 and len(re.sub(r"\W", "", value)) >= 5)  # ids, numbers of accounts, plans, ...


def typed(text: str, hits: list[Hit], lex: Lexicons) -> list[Hit]:
    """The tagger's spans, trimmed to their value, that are plausible values of their kinds."""
    out, mode = [], None
    for h in hits:
        t = _trim(text, h)
        if t is None or not plausible(t[2], text[t[0]:t[1]], lex):
            continue
        value = text[t[0]:t[1]]
        if t[2] == "NAME" and (_acronym(value, lex) or not any(c.isupper() for c in value)):
            mode = mode or casing(text)
            if mode == "mixed":  # where casing carries information a name is Titlecase, not "RUSB" or "wean"
                continue
        out.append(t)
    return out


_EDGE_WORD = re.compile(r"[A-Za-z]+")


def _trim(text: str, h: Hit) -> Hit | None:
    """The span without the punctuation and function words at its edges (': 02139', 'from Seattle')."""
    s, e, kind, p = h
    while True:
        while s < e and not text[s].isalnum():
            s += 1
        while e > s and not text[e - 1].isalnum():
            e -= 1
        m = _EDGE_WORD.match(text, s, e)
        if m and m.end() < e and text[m.end()] in " \t" and m.group().lower() in STOPWORDS:
            s = m.end()
            continue
        m = re.search(r"(?<![A-Za-z])[A-Za-z]+$", text[s:e])
        if m and m.start() > 0 and text[s + m.start() - 1] in " \t" and m.group().lower() in STOPWORDS:
            e = s + m.start()
            continue
        break
    return (s, e, kind, p) if s < e else None


def _acronym(value: str, lex: Lexicons) -> bool:
    """A short ALL-CAPS word that no name list holds: in a note whose casing carries information
    it is an abbreviation ('RUSB'), not a name (names are written Titlecase there)."""
    return value.isalpha() and value.isupper() and len(value) <= 5 and not lex.is_name(value.lower())


def outside(hits: list[Hit], protected: list[tuple[int, int]]) -> list[Hit]:
    """The hits with the protected ranges (tags of an earlier redaction) cut out: what is left of
    a hit beside a tag is still a hit ('[NAME] Smith' keeps 'Smith'), the tag never is."""
    if not protected:
        return hits
    out: list[Hit] = []
    for s, e, kind, p in hits:
        for ps, pe in protected:
            if pe <= s or ps >= e:
                continue
            if ps > s:
                out.append((s, ps, kind, p))
            s = max(s, pe)
            if s >= e:
                break
        if s < e:
            out.append((s, e, kind, p))
    return out


def union(rules: list[Span], hits: list[Hit]) -> list[Hit]:
    """What either finds (recall first). Where a tagger span overlaps a rule span the rules' reading
    wins: their boundaries and kinds are exact on what they know (a ZIP keeps its 3-digit rule, a
    place is not a name); the tagger adds what the rules did not find."""
    out: list[Hit] = [(r.start, r.end, r.type, r.score) for r in rules]
    starts = [r.start for r in rules]
    for h in hits:
        i = bisect.bisect_left(starts, h[1])  # rule spans are disjoint and sorted: the last one
        if i and rules[i - 1].end > h[0]:     # starting before the hit's end reaches furthest
            continue
        out.append(h)
    return out


def _name_word(t: Tok, lex: Lexicons, mode: str, name_prob: float, after_first: bool) -> bool:
    w = t.low
    if (not wordy(w) or len(w) < 2 or w in STOPWORDS or w in CREDENTIALS or w in TITLES or w in RELATIVES
            or w in CARE_ABBR or w in lex.clinical):
        return False
    if mode == "mixed" and not t.text[0].isupper():  # where casing carries information, names are capitalised
        return False
    if name_prob >= NAME_NEIGHBOUR_PROB:  # a common word no name list holds is not a surname
        return lex.is_name(w) or not lex.is_common(w)
    if mode == "mixed":
        return t.text[0].isupper() and (lex.is_name(w) or not lex.is_common(w)) and (after_first or w in lex.first)
    return after_first and w in lex.last and w not in lex.english


def _initial(text: str, t: Tok) -> bool:
    return len(t.text) == 1 and t.text.isalpha() and t.text.isupper() and text[t.end:t.end + 1] == "."


def extend_names(text: str, spans: list[Span], toks: list[Tok], tagged: Tagged, lex: Lexicons) -> list[Hit]:
    """``spans`` as hits, each NAME span grown over the adjacent name words (at most two each side)."""
    if not toks:
        return [(s.start, s.end, s.type, s.score) for s in spans]
    mode = casing(text)
    starts = [t.start for t in toks]
    out: list[Hit] = []
    for sp in spans:
        s, e = (sp.start, sp.end) if sp.type != "NAME" else _grow(text, toks, starts, sp.start, sp.end, tagged, lex, mode)
        out.append((s, e, sp.type, sp.score))
    return out


def _grow(text: str, toks: list[Tok], starts: list[int], s: int, e: int, tagged: Tagged, lex: Lexicons,
          mode: str) -> tuple[int, int]:
    for _ in range(2):  # forwards: surnames after a first name or a name
        j = bisect.bisect_left(starts, e)
        if j >= len(toks) or not _GAP.fullmatch(text[e:toks[j].start]):
            break
        last = toks[j - 1] if j > 0 and toks[j - 1].end <= e else None
        after_first = last is not None and (last.low in lex.first or len(last.text) == 1
                                            or tagged.name_prob_between(last.start, last.end) > 0.5)
        t = toks[j]
        if not _name_word(t, lex, mode, tagged.name_prob_between(t.start, t.end), after_first):
            break
        e = t.end
    for _ in range(2):  # backwards: a first name or an initial before a surname
        j = bisect.bisect_left(starts, s) - 1
        if j < 0 or not _GAP.fullmatch(text[toks[j].end:s]):
            break
        t = toks[j]
        if not (_initial(text, t) or _name_word(t, lex, mode, tagged.name_prob_between(t.start, t.end), False)):
            break
        s = t.start
    return s, e
