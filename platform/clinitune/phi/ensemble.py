"""Ensemble of the learned tagger and the rules: what either finds is PHI (recall first), and a
name grows over the name words next to it.

The union and its overlaps are resolved by the engine's merge (longest span, most specific kind,
highest score). Here a NAME span is extended over adjacent words that the tagger gives a fair
chance of being a name, or that the rules' lists and the note's casing make a name: a first name
found means its surname is found ("Karena Jones"), an initial before a surname goes with it
("J. Quenneville").
"""

from __future__ import annotations

import bisect
import re

from clinitune.phi.cues import CARE_ABBR, CREDENTIALS, RELATIVES, TITLES
from clinitune.phi.lexicons import STOPWORDS, Lexicons
from clinitune.phi.tagger import Tagged
from clinitune.phi.tokens import Tok, casing, wordy
from clinitune.phi.types import Span

Hit = tuple[int, int, str, float]
NAME_NEIGHBOUR_PROB = 0.12  # P(NAME) of a word next to a name that is enough to take it in
_GAP = re.compile(r"[ \t]{1,2}|-|[ \t]?-[ \t]?|\.[ \t]{1,2}")


def _name_word(t: Tok, lex: Lexicons, mode: str, name_prob: float, after_first: bool) -> bool:
    w = t.low
    if (not wordy(w) or len(w) < 2 or w in STOPWORDS or w in CREDENTIALS or w in TITLES or w in RELATIVES
            or w in CARE_ABBR or w in lex.clinical):
        return False
    if name_prob >= NAME_NEIGHBOUR_PROB:
        return True
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
