"""Name rules: lexicons read in context, over the words of one note.

Clinical notes come in three casings (mixed, ALL CAPS, lower case), so capitalisation is a signal
only in mixed-case text. A word becomes a name through a title ("Dr. X", "Mrs x"), a relative
("pt's wife Y", "son bill"), a credential ("Nancy Jones, RN", "NP CAROL"), a first name before a
surname, a phone label after it, or the name lists when the word is not also an English, medical
or clinical word. A word found as a name in context is a name everywhere in the note.
"""

from __future__ import annotations

import re

from clinitune.phi.cues import CARE_ABBR, CREDENTIALS, RELATIVES, TITLES, WEAK_CREDENTIALS
from clinitune.phi.lexicons import STOPWORDS, Lexicons
from clinitune.phi.tokens import Tok, wordy
from clinitune.phi.types import PhiType

Hit = tuple[int, int, str, float]
NAME = PhiType.NAME.value

_PERSON_VERBS = frozenset("called calls phoned phones visited visits came updated spoke spoken talked stayed wants asked asks states stated".split())
_PHONE_LABELS = frozenset("cell cellphone mobile phone home work office pager beeper tel telephone".split())
_WITH_VERBS = frozenset("spoke speak spoken talked talk consult consulted discussed met meeting conferred".split())
_REL_FILLER = frozenset("is named name in law step hcp proxy poa".split())


class NameRules:
    """Finds names of patients, relatives and clinicians among the words of one note."""

    def __init__(self, lex: Lexicons):
        self.lex = lex

    # --- token predicates -------------------------------------------------------------------
    def _is_initial(self, text: str, t: Tok) -> bool:
        return len(t.text) == 1 and t.text.isalpha() and (t.text.isupper() or text[t.end:t.end + 1] == ".")

    def _frequent_name(self, w: str) -> bool:
        """A name by the lists alone: a first name or a frequent surname, not an ordinary word."""
        lx = self.lex
        return (w in lx.first or w in lx.common_last) and len(w) > 2 and wordy(w) and not lx.is_common(w)

    def _unambiguous_name(self, w: str) -> bool:
        lx = self.lex
        return wordy(w) and (w in lx.first or w in lx.last) and len(w) > 2 and not lx.is_common(w)

    def _unknown_word(self, t: Tok) -> bool:
        """A word of letters in no list at all (not English, medical, clinical or a cue word)."""
        w = t.low
        return (wordy(w) and len(w) > 2 and not self.lex.is_common(w) and w not in CREDENTIALS and w not in TITLES
                and w not in RELATIVES and w not in CARE_ABBR)

    def _namey(self, t: Tok, mode: str, loose: bool = False) -> bool:
        """Could this token be part of a person's name (continuing one already started)?"""
        w = t.low
        if not wordy(w) or w in STOPWORDS or w in self.lex.clinical or w in CREDENTIALS or w in TITLES:
            return False
        if self._unambiguous_name(w):
            return True
        if mode == "mixed" and t.text[0].isupper() and not t.text.isupper():
            return not self.lex.is_common(w) or (loose and self.lex.is_name(w))
        if loose:
            return self.lex.is_name(w) and w not in self.lex.clinical and (w not in self.lex.english or w in self.lex.first)
        return False

    # --- rules --------------------------------------------------------------------------------
    def _name_after_cue(self, t: Tok, mode: str) -> bool:
        """Right after a title or a strong credential ("Dr. Foley", "NP CAROL"): almost any word."""
        w = t.low
        if not wordy(w) or w in STOPWORDS or w in CREDENTIALS or w in TITLES or w in RELATIVES:
            return len(t.text) == 1 and t.text.isalpha() and w not in ("a",)
        if self.lex.is_name(w) or len(t.text) == 1:
            return True
        if mode == "mixed":
            return t.text[0].isupper() or not self.lex.is_common(w)
        return w not in self.lex.clinical and (not self.lex.is_common(w) or len(w) > 3)

    def _surname_after(self, t: Tok, mode: str) -> bool:
        """A word continuing a name already found ("Ferdinand Halfpenny", "EDWIN PRZYBYLO")."""
        w = t.low
        if not wordy(w) or w in STOPWORDS or w in CREDENTIALS or w in TITLES or w in RELATIVES:
            return False
        if mode == "mixed":
            return t.text[0].isupper() and (not t.text.isupper() or not self.lex.is_common(w))
        return (self.lex.is_name(w) and w not in self.lex.clinical) or (not self.lex.is_common(w) and len(w) > 2)

    def detect(self, text: str, toks: list[Tok], mode: str) -> tuple[list[Hit], list[bool]]:
        """Name spans (one per word) and, per word, whether it is part of a name."""
        hits: list[Hit] = []
        n = len(toks)
        lx = self.lex
        score = [0.0] * n

        def add_name(i: int, sc: float) -> None:
            t = toks[i]
            if t.start > 0 and text[t.start - 1] in "/&":
                return  # "N/V", "I&O", "Cytox/adria": never a name
            if len(t.text) == 1 and text[t.end:t.end + 1] in ("/", "&"):
                return
            if sc > score[i]:
                score[i] = sc

        def gap(i: int, j: int) -> str:
            return text[toks[i].end:toks[j].start]

        def adjacent(i: int, j: int, allow: str = r"[\s.,'-]{0,3}") -> bool:
            if not (0 <= i < n and 0 <= j < n):
                return False
            g = gap(i, j)
            return "\n" not in g and re.fullmatch(allow, g) is not None

        def run_from(j: int, sc: float, limit: int = 2) -> int:
            """Name words continuing from token j (already a name); returns the index after them."""
            k = j + 1
            while k < n and k <= j + limit and adjacent(k - 1, k, r"\.?\s{1,2}|-|\.?\s?'\s?|'") and (
                    self._surname_after(toks[k], mode) or (len(toks[k - 1].text) == 1 and wordy(toks[k].low)
                                                           and toks[k].low not in STOPWORDS)):
                add_name(k, sc)
                k += 1
            return k

        def coordinated(k: int, sc: float) -> None:
            """", X" / " and X" / " & X" after a name: more names of the same kind."""
            while k < n:
                g = gap(k - 1, k)
                if toks[k].low in ("and", "or") and re.fullmatch(r"\s*,?\s*", g):
                    k += 1
                    if k >= n or not re.fullmatch(r"\s{1,2}", gap(k - 1, k)):
                        return
                elif not re.fullmatch(r"\s*[,&]\s*", g) or "\n" in g:
                    return
                c = toks[k]
                if c.low in TITLES or c.low in CREDENTIALS or c.low in RELATIVES or c.low in STOPWORDS:
                    return
                if "," in g and not self._unambiguous_name(c.low) and c.low not in lx.first:
                    return
                if not (self._unambiguous_name(c.low) or (c.low in lx.first and c.low not in STOPWORDS and (
                        mode != "mixed" or c.text[0].isupper())) or (mode == "mixed" and c.text[0].isupper() and not lx.is_common(c.low))):
                    return
                add_name(k, sc)
                k = run_from(k, sc - 0.05, 1)

        for i, t in enumerate(toks):
            w = t.low
            # Rule: title + name ("Dr. Marder", "dr o rourke", "MRS BRUCER", "mr I", "Drs Joseph and Robbins")
            if w in TITLES and i + 1 < n and adjacent(i, i + 1, r"\.?\s{0,3}"):
                nxt = toks[i + 1]
                ambiguous = w in ("ms", "mr") and not (mode == "mixed" and t.text[0].isupper() and not t.text.isupper())
                if ambiguous:  # "MS" (mental status, morphine), "MR" (mitral regurgitation)
                    ok = (self._unambiguous_name(nxt.low) or (len(nxt.text) == 1 and nxt.text.isupper())
                          or (mode == "mixed" and nxt.text[0].isupper() and not nxt.text.isupper() and lx.is_name(nxt.low)
                              and nxt.low not in lx.clinical and nxt.low not in lx.english)
                          or self._unknown_word(nxt))  # "MR. BWEIGHOUSE": not a word of any list
                else:
                    ok = self._name_after_cue(nxt, mode)
                if ok:
                    add_name(i + 1, 0.9)
                    coordinated(run_from(i + 1, 0.85), 0.8)
            # Rule: relative + name ("son bill", "pt's wife HELEN", "Sons David and Theodore")
            elif w in RELATIVES and i + 1 < n:
                j = i + 1
                while j < n and j <= i + 3 and toks[j].low in _REL_FILLER:  # "daughter in law", "proxy is"
                    j += 1
                if j < n and re.fullmatch(r"[\s,:;()\-–>]{0,6}", gap(j - 1, j)):
                    c = toks[j]
                    if wordy(c.low) and c.low not in STOPWORDS and c.low not in RELATIVES and (
                            self._unambiguous_name(c.low)
                            or (c.low in lx.first and c.low not in lx.clinical)
                            or (mode == "mixed" and c.text[0].isupper() and (lx.is_name(c.low) or not lx.is_common(c.low)))
                            or (mode != "mixed" and not lx.is_common(c.low) and len(c.low) > 2)):
                        add_name(j, 0.8)
                        coordinated(run_from(j, 0.75, 1), 0.75)
                # "Hank Przybylo (son)": the relative names the words before it
                if i >= 1 and re.fullmatch(r"\s*[(,-]\s*", gap(i - 1, i)) and (
                        self._namey(toks[i - 1], mode)
                        or (mode != "mixed" and "(" in gap(i - 1, i) and self._unknown_word(toks[i - 1]))):
                    add_name(i - 1, 0.75)
                    if i >= 2 and adjacent(i - 2, i - 1, r"\s{1,2}") and self._namey(toks[i - 2], mode, loose=True):
                        add_name(i - 2, 0.75)
            # Rule: credential after a name ("Nancy Jones, RN", "florencia cooke np", "Q. LANDER RRT")
            if w == "pa" and text[t.end:t.end + 2].lower() == "-c":
                w = "pa-c"  # physician assistant: a strong credential
            if (w in CREDENTIALS and i > 0 and not re.match(r"['’]s\b", text[t.end:t.end + 2], re.I)
                    and (adjacent(i - 1, i, r"\s{0,2},?\s{0,2}") or (len(toks[i - 1].text) == 1 and adjacent(i - 1, i, r"\.\s?")))):
                weak = w in WEAK_CREDENTIALS
                if not (weak and mode == "mixed" and not t.text.isupper()) and not (
                        weak and not (lx.is_name(toks[i - 1].low) and toks[i - 1].low not in lx.english)
                        and not self._is_initial(text, toks[i - 1])):
                    k, taken = i - 1, 0
                    while k >= 0 and taken < 3:
                        c = toks[k]
                        if self._is_initial(text, c) and (mode == "mixed" or text[c.end:c.end + 1] == "."):
                            add_name(k, 0.85)
                        elif self._namey(c, mode, loose=not weak) or (
                                taken == 0 and k >= 1 and self._is_initial(text, toks[k - 1]) and wordy(c.low)
                                and text[toks[k - 1].end:toks[k - 1].end + 1] == "." and c.low not in STOPWORDS) or (
                                not weak and taken == 0 and lx.is_name(c.low) and c.low not in STOPWORDS
                                and c.low not in lx.clinical and (c.low not in lx.english or c.low in lx.first)) or (
                                not weak and wordy(c.low) and len(c.low) > 2 and c.low not in STOPWORDS
                                and c.low not in lx.clinical and not lx.is_common(c.low)) or (
                                not weak and taken == 0 and mode == "mixed" and c.text[0].isupper() and wordy(c.low)
                                and c.low not in STOPWORDS and c.low not in CARE_ABBR):
                            add_name(k, 0.7 if weak else 0.85)
                        else:
                            break
                        taken += 1
                        if k == 0 or not adjacent(k - 1, k, r"\.?\s{1,2}|-|\.?\s?"):
                            break
                        k -= 1
            # Rule: credential before a name ("NP CAROL", "per NP Patty")
            if (w in CREDENTIALS and w not in WEAK_CREDENTIALS and i + 1 < n and adjacent(i, i + 1, r"\s{1,2}")
                    and (t.text.isupper() or mode != "mixed")):
                c = toks[i + 1]
                if (wordy(c.low) and c.low not in STOPWORDS and c.low not in lx.clinical and c.low not in CARE_ABBR
                        and (self._unambiguous_name(c.low) or c.low in lx.first
                             or (mode == "mixed" and c.text[0].isupper() and not lx.is_common(c.low)))):
                    add_name(i + 1, 0.75)
                    run_from(i + 1, 0.7, 1)
            # Rule: lexicon name not also an ordinary word
            if self._frequent_name(w):
                if mode == "mixed":
                    if t.text[0].isupper():
                        add_name(i, 0.75)
                    elif w in lx.first or len(w) > 5:
                        add_name(i, 0.45)
                else:
                    add_name(i, 0.7 if mode == "upper" else 0.55)
            # Rule: first name (even a common word) + capitalised surname ("Will Smith", "Hope Jones")
            if (mode == "mixed" and w in lx.first and t.text[0].isupper() and not t.text.isupper() and w not in STOPWORDS
                    and i + 1 < n and adjacent(i, i + 1, r"\s") and toks[i + 1].text[0].isupper()
                    and self._unambiguous_name(toks[i + 1].low)):
                add_name(i, 0.7)
                add_name(i + 1, 0.75)
            # Rule: initial + surname ("J. Chang", "L. RUUSKA")
            if (len(t.text) == 1 and t.text.isalpha() and text[t.end:t.end + 1] == "." and i + 1 < n
                    and (t.text.isupper() or self._unambiguous_name(toks[i + 1].low))
                    and (t.start == 0 or text[t.start - 1] in " \t\n(\"'")
                    and adjacent(i, i + 1, r"\.\s{1,2}") and (self._namey(toks[i + 1], mode) or score[i + 1] > 0
                                                                or (t.text.upper() not in "SOAPRL" and self._unknown_word(toks[i + 1])
                                                                    and not (mode == "mixed" and toks[i + 1].text.islower())))):
                add_name(i, 0.8)
                add_name(i + 1, 0.8)
            # Rule: a contact's name before a phone label ("Lopie Certusi cell# 410-322-1419")
            if w in _PHONE_LABELS and i > 0 and re.match(r"\s*(?:#|no\.?|number)?\s*[:#]?\s*[(]?\d{3}", text[t.end:t.end + 12]):
                k = i - 1
                while k >= 0 and k >= i - 2 and re.fullmatch(r"\s{1,2}|\s?[-,:]\s?", gap(k, k + 1)):
                    c = toks[k]
                    if not (wordy(c.low) and c.low not in STOPWORDS and c.low not in RELATIVES and c.low not in lx.clinical
                            and c.low not in CREDENTIALS and c.low not in TITLES
                            and (self._unambiguous_name(c.low) or (mode == "mixed" and c.text[0].isupper()
                                                                    and (lx.is_name(c.low) or not lx.is_common(c.low)))
                                 or (mode != "mixed" and self._unknown_word(c)))):
                        break
                    add_name(k, 0.7)
                    k -= 1
            # Rule: "spoke with patty hoeller", "consult with Mary Smith": a first name and a surname after "with"
            if (w in _WITH_VERBS and i + 3 < n and toks[i + 1].low == "with" and toks[i + 2].low in lx.first
                    and toks[i + 2].low not in STOPWORDS and toks[i + 2].low not in lx.clinical
                    and adjacent(i + 2, i + 3, r"\s{1,2}") and wordy(toks[i + 3].low) and len(toks[i + 3].low) > 2
                    and toks[i + 3].low not in STOPWORDS and not lx.is_common(toks[i + 3].low)):
                add_name(i + 2, 0.7)
                add_name(i + 3, 0.7)
            # Rule: a first name doing something a person does ("bill called", "Bob visited")
            if (w in lx.first and w not in STOPWORDS and w not in lx.clinical and i + 1 < n and adjacent(i, i + 1, r"\s{1,2}")
                    and toks[i + 1].low in _PERSON_VERBS and (mode != "mixed" or t.text[0].isupper() or not lx.is_common(w))):
                add_name(i, 0.6)

        # extend names: "Nancy" + "Jones", "Stord"-"Painter", "BEA TURA", "KAREN ANN YANULIS"
        for _ in range(2):
            for i in range(n):
                if score[i] <= 0:
                    continue
                for j in (i - 1, i + 1):
                    if not (0 <= j < n) or score[j] > 0:
                        continue
                    a, b = min(i, j), max(i, j)
                    if not adjacent(a, b, r"\s{1,2}|-|\s?-\s?|\.\s"):
                        continue
                    c = toks[j]
                    if self._namey(c, mode) or (gap(a, b) == "-" and wordy(c.low) and not lx.is_common(c.low)):
                        add_name(j, 0.7)
                    elif j == i - 1 and self._is_initial(text, c) and mode != "lower":
                        add_name(j, 0.7)
                    elif (j == i + 1 and toks[i].low in lx.first and mode != "mixed" and wordy(c.low) and len(c.low) > 2
                          and c.low not in STOPWORDS and c.low not in lx.clinical and not lx.is_common(c.low)):
                        add_name(j, 0.6)
            # "Suzette and Hank": a first name coordinated with a name found
            for i in range(n - 2):
                if score[i] > 0 and toks[i + 1].low in ("and", "&") and score[i + 2] == 0 and re.fullmatch(r"\s{1,2}", gap(i, i + 1)):
                    c = toks[i + 2]
                    if (c.low in lx.first and c.low not in STOPWORDS and c.low not in lx.clinical
                            and (mode != "mixed" or c.text[0].isupper())):
                        add_name(i + 2, 0.65)
        self._propagate(toks, score, mode, 0.75)
        hits = [(toks[i].start, toks[i].end, NAME, score[i]) for i in range(n) if score[i] > 0]
        return hits, [s > 0 for s in score]

    def _propagate(self, toks: list[Tok], score: list[float], mode: str, min_score: float) -> None:
        """A word found as a name in context is a name wherever else it appears in the note."""
        lx = self.lex
        found = {toks[i].low for i in range(len(toks)) if score[i] >= min_score and len(toks[i].low) > 2
                 and not lx.is_common(toks[i].low)}
        if not found:
            return
        for i, t in enumerate(toks):
            if score[i] == 0 and t.low in found and (mode != "mixed" or t.text[0].isupper() or t.low not in lx.english):
                score[i] = 0.65
