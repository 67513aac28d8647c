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
# "Patient John Smith was seen", "pt: Zorblatt Quenneville": a person named by the role before the name
_PATIENT_CUES = frozenset("patient pt client resident member".split())
# "Karena Jones is a 18 year-old female" (the opening line of many generated and templated notes)
_AGE_STATEMENT = re.compile(r"[ \t]+(?:is|was)[ \t]+an?[ \t]+\d{1,3}[ \t-]*(?:year|yr|y/?o\b|yo\b|month|week|day)", re.I)
# "Abe604 Nader710": names with a number glued on, as Synthea writes them by default
_NUMBERED_NAME = re.compile(r"([A-Z][a-z]+(?:['-][A-Z]?[a-z]+)*)(\d{1,3})")


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
        scan = _Scan(self, text, toks, mode)
        for i in range(len(toks)):
            for rule in _TOKEN_RULES:
                rule(scan, i)
        scan.extend()
        self._propagate(toks, scan.score, mode, 0.75)
        score = scan.score
        hits = [(toks[i].start, toks[i].end, NAME, score[i]) for i in range(len(toks)) if score[i] > 0]
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


class _Scan:
    """One note being read for names: its words, casing and a name score per word.

    Each ``rule_*`` method looks at word ``i`` and raises the scores of the words it names; they
    run word by word in the order of :data:`_TOKEN_RULES`, then :meth:`extend` grows what was found.
    """

    def __init__(self, rules: NameRules, text: str, toks: list[Tok], mode: str):
        self.r, self.lex, self.text, self.toks, self.mode = rules, rules.lex, text, toks, mode
        self.n = len(toks)
        self.score = [0.0] * self.n

    # --- helpers --------------------------------------------------------------------------------
    def add(self, i: int, sc: float) -> None:
        t, text = self.toks[i], self.text
        if t.start > 0 and text[t.start - 1] in "/&":
            return  # "N/V", "I&O", "Cytox/adria": never a name
        if len(t.text) == 1 and text[t.end:t.end + 1] in ("/", "&"):
            return
        if sc > self.score[i]:
            self.score[i] = sc

    def gap(self, i: int, j: int) -> str:
        return self.text[self.toks[i].end:self.toks[j].start]

    def adjacent(self, i: int, j: int, allow: str = r"[\s.,'-]{0,3}") -> bool:
        if not (0 <= i < self.n and 0 <= j < self.n):
            return False
        g = self.gap(i, j)
        return "\n" not in g and re.fullmatch(allow, g) is not None

    def run_from(self, j: int, sc: float, limit: int = 2) -> int:
        """Name words continuing from token j (already a name); returns the index after them."""
        toks, k = self.toks, j + 1
        while k < self.n and k <= j + limit and self.adjacent(k - 1, k, r"\.?\s{1,2}|-|\.?\s?'\s?|'") and (
                self.r._surname_after(toks[k], self.mode) or (len(toks[k - 1].text) == 1 and wordy(toks[k].low)
                                                              and toks[k].low not in STOPWORDS)):
            self.add(k, sc)
            k += 1
        return k

    def coordinated(self, k: int, sc: float) -> None:
        """", X" / " and X" / " & X" after a name: more names of the same kind."""
        toks, lx, mode = self.toks, self.lex, self.mode
        while k < self.n:
            g = self.gap(k - 1, k)
            if toks[k].low in ("and", "or") and re.fullmatch(r"\s*,?\s*", g):
                k += 1
                if k >= self.n or not re.fullmatch(r"\s{1,2}", self.gap(k - 1, k)):
                    return
            elif not re.fullmatch(r"\s*[,&]\s*", g) or "\n" in g:
                return
            c = toks[k]
            if c.low in TITLES or c.low in CREDENTIALS or c.low in RELATIVES or c.low in STOPWORDS:
                return
            if "," in g and not self.r._unambiguous_name(c.low) and c.low not in lx.first:
                return
            if not (self.r._unambiguous_name(c.low) or (c.low in lx.first and c.low not in STOPWORDS and (
                    mode != "mixed" or c.text[0].isupper())) or (mode == "mixed" and c.text[0].isupper() and not lx.is_common(c.low))):
                return
            self.add(k, sc)
            k = self.run_from(k, sc - 0.05, 1)

    # --- rules, one word at a time --------------------------------------------------------------
    def rule_title(self, i: int) -> None:
        """Title + name ("Dr. Marder", "dr o rourke", "MRS BRUCER", "mr I", "Drs Joseph and Robbins")."""
        t, toks, lx, mode, r = self.toks[i], self.toks, self.lex, self.mode, self.r
        w = t.low
        if not (w in TITLES and i + 1 < self.n and self.adjacent(i, i + 1, r"\.?\s{0,3}")):
            return
        nxt = toks[i + 1]
        ambiguous = w in ("ms", "mr") and not (mode == "mixed" and t.text[0].isupper() and not t.text.isupper())
        if ambiguous:  # "MS" (mental status, morphine), "MR" (mitral regurgitation)
            ok = (r._unambiguous_name(nxt.low) or (len(nxt.text) == 1 and nxt.text.isupper())
                  or (mode == "mixed" and nxt.text[0].isupper() and not nxt.text.isupper() and lx.is_name(nxt.low)
                      and nxt.low not in lx.clinical and nxt.low not in lx.english)
                  or r._unknown_word(nxt))  # "MR. BWEIGHOUSE": not a word of any list
        else:
            ok = r._name_after_cue(nxt, mode)
        if ok:
            self.add(i + 1, 0.9)
            self.coordinated(self.run_from(i + 1, 0.85), 0.8)

    def rule_relative_before(self, i: int) -> None:
        """Relative + name ("son bill", "pt's wife HELEN", "Sons David and Theodore")."""
        toks, lx, mode, r = self.toks, self.lex, self.mode, self.r
        if toks[i].low not in RELATIVES or i + 1 >= self.n:
            return
        j = i + 1
        while j < self.n and j <= i + 3 and toks[j].low in _REL_FILLER:  # "daughter in law", "proxy is"
            j += 1
        if j < self.n and re.fullmatch(r"[\s,:;()\-–>]{0,6}", self.gap(j - 1, j)):
            c = toks[j]
            if wordy(c.low) and c.low not in STOPWORDS and c.low not in RELATIVES and (
                    r._unambiguous_name(c.low)
                    or (c.low in lx.first and c.low not in lx.clinical)
                    or (mode == "mixed" and c.text[0].isupper() and (lx.is_name(c.low) or not lx.is_common(c.low)))
                    or (mode != "mixed" and not lx.is_common(c.low) and len(c.low) > 2)):
                self.add(j, 0.8)
                self.coordinated(self.run_from(j, 0.75, 1), 0.75)

    def rule_relative_after(self, i: int) -> None:
        """"Hank Przybylo (son)": the relative names the words before it."""
        toks, mode, r = self.toks, self.mode, self.r
        if toks[i].low not in RELATIVES or i + 1 >= self.n or i < 1:
            return
        if re.fullmatch(r"\s*[(,-]\s*", self.gap(i - 1, i)) and (
                r._namey(toks[i - 1], mode)
                or (mode != "mixed" and "(" in self.gap(i - 1, i) and r._unknown_word(toks[i - 1]))):
            self.add(i - 1, 0.75)
            if i >= 2 and self.adjacent(i - 2, i - 1, r"\s{1,2}") and r._namey(toks[i - 2], mode, loose=True):
                self.add(i - 2, 0.75)

    def _credential(self, i: int) -> str:
        t = self.toks[i]
        if t.low == "pa" and self.text[t.end:t.end + 2].lower() == "-c":
            return "pa-c"  # physician assistant: a strong credential
        return t.low

    def rule_credential_after(self, i: int) -> None:
        """Credential after a name ("Nancy Jones, RN", "florencia cooke np", "Q. LANDER RRT")."""
        t, toks, lx, mode, r, text = self.toks[i], self.toks, self.lex, self.mode, self.r, self.text
        w = self._credential(i)
        if not (w in CREDENTIALS and i > 0 and not re.match(r"['’]s\b", text[t.end:t.end + 2], re.I)
                and (self.adjacent(i - 1, i, r"\s{0,2},?\s{0,2}")
                     or (len(toks[i - 1].text) == 1 and self.adjacent(i - 1, i, r"\.\s?")))):
            return
        weak = w in WEAK_CREDENTIALS
        if (weak and mode == "mixed" and not t.text.isupper()) or (
                weak and not (lx.is_name(toks[i - 1].low) and toks[i - 1].low not in lx.english)
                and not r._is_initial(text, toks[i - 1])):
            return
        k, taken = i - 1, 0
        while k >= 0 and taken < 3:
            c = toks[k]
            if r._is_initial(text, c) and (mode == "mixed" or text[c.end:c.end + 1] == "."):
                self.add(k, 0.85)
            elif self._before_credential(k, c, weak, taken):
                self.add(k, 0.7 if weak else 0.85)
            else:
                break
            taken += 1
            if k == 0 or not self.adjacent(k - 1, k, r"\.?\s{1,2}|-|\.?\s?"):
                break
            k -= 1

    def _before_credential(self, k: int, c: Tok, weak: bool, taken: int) -> bool:
        """Can word ``c`` (index k) be part of the name a credential follows?"""
        toks, lx, mode, r, text = self.toks, self.lex, self.mode, self.r, self.text
        return r._namey(c, mode, loose=not weak) or (
            taken == 0 and k >= 1 and r._is_initial(text, toks[k - 1]) and wordy(c.low)
            and text[toks[k - 1].end:toks[k - 1].end + 1] == "." and c.low not in STOPWORDS) or (
            not weak and taken == 0 and lx.is_name(c.low) and c.low not in STOPWORDS
            and c.low not in lx.clinical and (c.low not in lx.english or c.low in lx.first)) or (
            not weak and wordy(c.low) and len(c.low) > 2 and c.low not in STOPWORDS
            and c.low not in lx.clinical and not lx.is_common(c.low)) or (
            not weak and taken == 0 and mode == "mixed" and c.text[0].isupper() and wordy(c.low)
            and c.low not in STOPWORDS and c.low not in CARE_ABBR)

    def rule_credential_before(self, i: int) -> None:
        """Credential before a name ("NP CAROL", "per NP Patty")."""
        t, toks, lx, mode, r = self.toks[i], self.toks, self.lex, self.mode, self.r
        w = self._credential(i)
        if not (w in CREDENTIALS and w not in WEAK_CREDENTIALS and i + 1 < self.n and self.adjacent(i, i + 1, r"\s{1,2}")
                and (t.text.isupper() or mode != "mixed")):
            return
        c = toks[i + 1]
        if (wordy(c.low) and c.low not in STOPWORDS and c.low not in lx.clinical and c.low not in CARE_ABBR
                and (r._unambiguous_name(c.low) or c.low in lx.first
                     or (mode == "mixed" and c.text[0].isupper() and not lx.is_common(c.low)))):
            self.add(i + 1, 0.75)
            self.run_from(i + 1, 0.7, 1)

    def rule_lexicon(self, i: int) -> None:
        """A name of the lists that is not also an ordinary word."""
        t, mode = self.toks[i], self.mode
        w = t.low
        if not self.r._frequent_name(w):
            return
        if mode == "mixed":
            if t.text[0].isupper():
                self.add(i, 0.75)
            elif w in self.lex.first or len(w) > 5:
                self.add(i, 0.45)
        else:
            self.add(i, 0.7 if mode == "upper" else 0.55)

    def rule_first_and_surname(self, i: int) -> None:
        """First name (even a common word) + capitalised surname ("Will Smith", "Hope Jones")."""
        t, toks, lx = self.toks[i], self.toks, self.lex
        w = t.low
        if (self.mode == "mixed" and w in lx.first and t.text[0].isupper() and not t.text.isupper() and w not in STOPWORDS
                and i + 1 < self.n and self.adjacent(i, i + 1, r"\s") and toks[i + 1].text[0].isupper()
                and self.r._unambiguous_name(toks[i + 1].low)):
            self.add(i, 0.7)
            self.add(i + 1, 0.75)

    def rule_initial_and_surname(self, i: int) -> None:
        """Initial + surname ("J. Chang", "L. RUUSKA")."""
        t, toks, mode, r, text = self.toks[i], self.toks, self.mode, self.r, self.text
        if not (len(t.text) == 1 and t.text.isalpha() and text[t.end:t.end + 1] == "." and i + 1 < self.n):
            return
        nxt = toks[i + 1]
        if ((t.text.isupper() or r._unambiguous_name(nxt.low))
                and (t.start == 0 or text[t.start - 1] in " \t\n(\"'")
                and self.adjacent(i, i + 1, r"\.\s{1,2}")
                and (r._namey(nxt, mode) or self.score[i + 1] > 0
                     or (t.text.upper() not in "SOAPRL" and r._unknown_word(nxt)
                         and not (mode == "mixed" and nxt.text.islower())))):
            self.add(i, 0.8)
            self.add(i + 1, 0.8)

    def rule_phone_contact(self, i: int) -> None:
        """A contact's name before a phone label ("Lopie Certusi cell# 410-322-1419")."""
        t, toks, lx, mode, r = self.toks[i], self.toks, self.lex, self.mode, self.r
        if not (t.low in _PHONE_LABELS and i > 0
                and re.match(r"\s*(?:#|no\.?|number)?\s*[:#]?\s*[(]?\d{3}", self.text[t.end:t.end + 12])):
            return
        k = i - 1
        while k >= 0 and k >= i - 2 and re.fullmatch(r"\s{1,2}|\s?[-,:]\s?", self.gap(k, k + 1)):
            c = toks[k]
            if not (wordy(c.low) and c.low not in STOPWORDS and c.low not in RELATIVES and c.low not in lx.clinical
                    and c.low not in CREDENTIALS and c.low not in TITLES
                    and (r._unambiguous_name(c.low) or (mode == "mixed" and c.text[0].isupper()
                                                        and (lx.is_name(c.low) or not lx.is_common(c.low)))
                         or (mode != "mixed" and r._unknown_word(c)))):
                break
            self.add(k, 0.7)
            k -= 1

    def rule_spoke_with(self, i: int) -> None:
        """"spoke with patty hoeller", "consult with Mary Smith": a first name and a surname after "with"."""
        toks, lx = self.toks, self.lex
        if (toks[i].low in _WITH_VERBS and i + 3 < self.n and toks[i + 1].low == "with" and toks[i + 2].low in lx.first
                and toks[i + 2].low not in STOPWORDS and toks[i + 2].low not in lx.clinical
                and self.adjacent(i + 2, i + 3, r"\s{1,2}") and wordy(toks[i + 3].low) and len(toks[i + 3].low) > 2
                and toks[i + 3].low not in STOPWORDS and not lx.is_common(toks[i + 3].low)):
            self.add(i + 2, 0.7)
            self.add(i + 3, 0.7)

    def rule_person_verb(self, i: int) -> None:
        """A first name doing something a person does ("bill called", "Bob visited")."""
        t, toks, lx = self.toks[i], self.toks, self.lex
        w = t.low
        if (w in lx.first and w not in STOPWORDS and w not in lx.clinical and i + 1 < self.n
                and self.adjacent(i, i + 1, r"\s{1,2}") and toks[i + 1].low in _PERSON_VERBS
                and (self.mode != "mixed" or t.text[0].isupper() or not lx.is_common(w))):
            self.add(i, 0.6)

    # --- growing what was found -----------------------------------------------------------------
    def extend(self) -> None:
        """"Nancy" + "Jones", "Stord"-"Painter", "BEA TURA", "KAREN ANN YANULIS"; "Suzette and Hank"."""
        for _ in range(2):
            for i in range(self.n):
                if self.score[i] > 0:
                    self._extend_around(i)
            self._extend_coordinated()

    def _extend_around(self, i: int) -> None:
        toks, lx, mode, r = self.toks, self.lex, self.mode, self.r
        for j in (i - 1, i + 1):
            if not (0 <= j < self.n) or self.score[j] > 0:
                continue
            a, b = min(i, j), max(i, j)
            if not self.adjacent(a, b, r"\s{1,2}|-|\s?-\s?|\.\s"):
                continue
            c = toks[j]
            if r._namey(c, mode) or (self.gap(a, b) == "-" and wordy(c.low) and not lx.is_common(c.low)):
                self.add(j, 0.7)
            elif j == i - 1 and r._is_initial(self.text, c) and mode != "lower":
                self.add(j, 0.7)
            elif (j == i + 1 and toks[i].low in lx.first and mode != "mixed" and wordy(c.low) and len(c.low) > 2
                  and c.low not in STOPWORDS and c.low not in lx.clinical and not lx.is_common(c.low)):
                self.add(j, 0.6)
            elif j == i + 1 and toks[i].low in lx.first and self.surname_after_first(c):
                self.add(j, 0.65)  # "Karena Jones": a first name found means its surname is found

    def surname_after_first(self, c: Tok) -> bool:
        """Is ``c``, right after a first name taken as a name, its surname ("Karena Jones", "Hope Smith")?"""
        lx, w = self.lex, c.low
        if (not wordy(w) or len(w) < 2 or w in STOPWORDS or w in lx.clinical or w in CREDENTIALS or w in TITLES
                or w in RELATIVES or w in CARE_ABBR):
            return False
        if self.mode == "mixed":
            return c.text[0].isupper() and (w in lx.last or not lx.is_common(w))
        return w in lx.last and w not in lx.english

    def _extend_coordinated(self) -> None:
        """"Suzette and Hank": a first name coordinated with a name found."""
        toks, lx, score = self.toks, self.lex, self.score
        for i in range(self.n - 2):
            if score[i] > 0 and toks[i + 1].low in ("and", "&") and score[i + 2] == 0 and re.fullmatch(r"\s{1,2}", self.gap(i, i + 1)):
                c = toks[i + 2]
                if (c.low in lx.first and c.low not in STOPWORDS and c.low not in lx.clinical
                        and (self.mode != "mixed" or c.text[0].isupper())):
                    self.add(i + 2, 0.65)


def _name_word(scan: "_Scan", t: Tok, *, strict: bool = False) -> bool:
    """A word that can be a person's name in a context that names a person: a name of the lists or a
    word of no list, capitalised in mixed-case text; ``strict`` (ALL CAPS / lower-case text) also
    rules out ordinary words."""
    lx, w = scan.lex, t.low
    if (not wordy(w) or len(w) < 2 or w in STOPWORDS or w in lx.clinical or w in CREDENTIALS or w in TITLES
            or w in RELATIVES or w in CARE_ABBR):
        return False
    if scan.mode == "mixed" and not strict:
        return t.text[0].isupper() and (lx.is_name(w) or not lx.is_common(w))
    return (w in lx.first and w not in lx.english) or (len(w) > 2 and not lx.is_common(w) and w not in lx.places)


def rule_patient_cue(scan: "_Scan", i: int) -> None:
    """"Patient John Smith was seen", "pt Zorblatt Quenneville": the role names the words after it."""
    toks, lx = scan.toks, scan.lex
    if toks[i].low not in _PATIENT_CUES or i + 1 >= scan.n or not scan.adjacent(i, i + 1, r":?[ \t]{1,2}"):
        return
    if toks[i].low == "pt" and scan.mode != "mixed":
        return  # "pt" + two words of no list is nursing shorthand far more often than a name
    c = toks[i + 1]
    nxt = toks[i + 2] if i + 2 < scan.n and scan.adjacent(i + 1, i + 2, r"[ \t]{1,2}") else None
    # Misspelt words follow "pt" in nursing shorthand ("pt restles"), so one word is not enough:
    # a first name and a surname of the lists, or two words of no list, capitalised where case is kept.
    if nxt is None:
        return
    if scan.mode == "mixed":
        ok = _name_word(scan, nxt) and _name_word(scan, c) and (c.low in lx.first or not lx.is_common(c.low))
    else:
        surname = nxt.low in lx.last and nxt.low not in lx.clinical and nxt.low not in STOPWORDS
        ok = (c.low in lx.first and surname) or (_name_word(scan, c, strict=True) and (surname or _name_word(scan, nxt, strict=True)))
    if ok:
        scan.add(i + 1, 0.75)
        scan.run_from(i + 1, 0.7, 2)


def rule_age_statement(scan: "_Scan", i: int) -> None:
    """"Karena Jones is a 18 year-old female": the words before "is a NN year-old" name the patient."""
    toks, text = scan.toks, scan.text
    if scan.mode != "mixed" or not _AGE_STATEMENT.match(text, toks[i].end):
        return
    k, taken = i, []
    while k >= 0 and len(taken) < 3 and (_name_word(scan, toks[k]) or _NUMBERED_NAME.fullmatch(toks[k].text)):
        taken.append(k)
        if k == 0 or not scan.adjacent(k - 1, k, r"[ \t]{1,2}"):
            break
        k -= 1
    start = toks[taken[-1]].start if taken else 0
    if taken and (start == 0 or re.search(r"(?:^|[\n.:;>#])[ \t\"'*]*$", text[max(0, start - 8):start])):
        for k in taken:
            scan.add(k, 0.75)


def rule_numbered_name(scan: "_Scan", i: int) -> None:
    """"Abe604 Nader710" (Synthea's default names): a name of the lists with a number glued on."""
    t, lx = scan.toks[i], scan.lex
    m = _NUMBERED_NAME.fullmatch(t.text)
    if not m:
        return
    w = m.group(1).lower()
    if w in lx.clinical or (not lx.is_name(w) and lx.is_common(w)):
        return
    pair = any(0 <= j < scan.n and _NUMBERED_NAME.fullmatch(scan.toks[j].text) and scan.adjacent(min(i, j), max(i, j), r"[ \t]{1,2}")
               for j in (i - 1, i + 1))
    if pair or (w in lx.first and not lx.is_common(w)):
        scan.add(i, 0.8)


# The word-level rules in the order they run for each word (a later rule may read what an
# earlier one found, e.g. an initial before a word already taken as a name).
_TOKEN_RULES = (
    _Scan.rule_title, _Scan.rule_relative_before, _Scan.rule_relative_after, _Scan.rule_credential_after,
    _Scan.rule_credential_before, _Scan.rule_lexicon, _Scan.rule_first_and_surname, _Scan.rule_initial_and_surname,
    _Scan.rule_phone_contact, _Scan.rule_spoke_with, _Scan.rule_person_verb,
    rule_patient_cue, rule_age_statement, rule_numbered_name,
)
