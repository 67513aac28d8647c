"""Place rules: hospitals, units, towns and regions, read from the words of one note.

Places come from facility patterns ("X Hospital", "St. Agnes", "Holy Cross"), movement context
("transferred to GH", "from Quartermain 3"), residence context ("lives in catonsville", "Neil
Meitz of Towson"), named US regions ("Eastern Shore") and the US place list (GeoNames). A word
found as a place in context is a place everywhere in the note.
"""

from __future__ import annotations

import re

from clinitune.phi.cues import CARE_ABBR, RELATIVES, TITLES
from clinitune.phi.lexicons import STOPWORDS, Lexicons
from clinitune.phi.tokens import Tok, wordy
from clinitune.phi.types import PhiType

Hit = tuple[int, int, str, float]
LOC = PhiType.LOCATION.value

_LIVES_CTX = re.compile(
    r"\b(?:(?:lives|living|live|resides|residing|reside)[ \t]+(?:[A-Za-z]+[ \t]+){0,4}?|(?:resident|native|moved|moving|"
    r"vacation(?:ing|ed)?|visiting|visits|visited|summers|winters|travel(?:l?ed|l?ing)?|trip)[ \t]+(?:alone[ \t]+|here[ \t]+)?)"
    r"(?:in|at|to|of|from)[ \t]+",
    re.I,
)
_IN_CTX = re.compile(r"\b(?:in|of|near|at)\s+", re.I)
_FROM_CTX = re.compile(r"\b(?:from|near|outside\s+of|outside)\s+", re.I)
_MOVE_CTX = re.compile(
    r"\b(?:transfer(?:red|ed|ring)?|xfer(?:red|ed)?|tx|txd|sent|send|sending|admit(?:ted)?|adm|came|come|comes|coming|"
    r"arrived|arrives|arriving|brought|bring|discharged?|d/c'?d?|dc'?d?|went|go|goes|going|return(?:ed|ing|s)?|"
    r"taken|take|accepted|accept|transported|flown|flew|medflight(?:ed)?|presented|presenting|readmitted|"
    r"placement|placed|bed|d/c|dc|referred|refer|trans|enroute|en\s+route|arrival|biba|bibems|bib)"
    r"\s+(?:back\s+)?(?:(?:into|to|from|at|by|in)\b|@)\s*(?:the\s+)?"
    r"|\b(?:seen|followed|evaluated|treated|hospitali[sz]ed|stay|stayed|team|er|ed|ew|clinic|outpatient|had|w/u|"
    r"worked\s+up|surgery|procedure|cath)\s+(?:at|@)\s*(?:the\s+)?",
    re.I,
)
_UNIT_NUMBER = re.compile(r"[ \t]?\d{1,2}(?![\d%]|[/.,:x-]\d|\s*%)", re.I)
_MEASURE_AFTER = re.compile(
    r"\s*(?:mg|mcg|g|gm|ml|cc|l|u|units?|meq|mmol|min|mins|hrs?|hours?|days?|x|%|bags?|tabs?|puffs?|amps?|"
    r"cm|mm|mmhg|bpm|breaths?|beats?|lead|pm|am)\b", re.I)
_PREP_CTX = re.compile(r"\b(?:to|from|on|per|at|in|or|and|transfer|xfer|plan:?)\s+(?:the\s+)?|/", re.I)
FACILITY = frozenset(
    """hospital hosp hospitals medical center centre ctr med clinic clinics rehab rehabilitation nursing
    home house manor hospice healthcare infirmary institute sanitarium sanatorium nh snf village gardens
    commons health homes""".split()
)
FACILITY_HEADS = frozenset(
    """hospital hosp hospitals clinic rehab rehabilitation house manor hospice healthcare infirmary institute nh
    sanitarium sanatorium regional memorial center centre ctr campus""".split()
)
# Well-known hospital names of more than one word (general knowledge, any US city), lower case.
HOSPITAL_PHRASES = (
    "holy cross", "sacred heart", "good samaritan", "good shepherd", "mount sinai", "mt sinai", "mt. sinai",
    "beth israel", "johns hopkins", "mass general", "cedars sinai", "cedars-sinai", "st. elsewhere",
    "our lady", "lady of lourdes", "children's hospital", "shriners hospital", "mayo clinic", "cleveland clinic",
    "brigham and women's", "new york presbyterian", "union memorial", "veterans affairs",
)
# Named US regions smaller than a state (Safe Harbor treats them as locations), lower case.
US_REGIONS = (
    "eastern shore", "western shore", "north shore", "south shore", "upper peninsula", "outer banks", "cape cod",
    "long island", "staten island", "gulf coast", "low country", "lowcountry", "hill country", "panhandle",
    "inland empire", "silicon valley", "bay area", "central valley", "finger lakes", "hudson valley",
    "lehigh valley", "shenandoah valley", "tidewater", "hampton roads", "upstate", "downstate", "the berkshires",
    "the poconos", "the catskills", "the adirondacks", "eastern panhandle", "northern neck", "southside",
)
# Words that are hospital-name stems in the US when followed by a facility word or after "to/from".
HOSPITAL_STEMS = frozenset(
    """holy cross sacred heart good samaritan mercy memorial presbyterian methodist baptist lutheran adventist
    providence sinai hopkins mayo kaiser shriners charity deaconess episcopal bethesda calvary trinity
    advocate ascension covenant genesis christus carilion geisinger allegheny montefiore langone
    cedars brigham lahey""".split()
)
_FACILITY_MODIFIERS = frozenset(
    "general county city state university community regional medical med st saint mount mt of children womens "
    "veterans greater north south east west upper lower new".split())


class PlaceRules:
    """Finds places among the words of one note."""

    def __init__(self, lex: Lexicons):
        self.lex = lex

    def detect(self, text: str, toks: list[Tok], mode: str, is_name_tok: list[bool]) -> list[Hit]:
        """Place spans; words already taken as names are not re-read as single-word places."""
        scan = _Scan(self, text, toks, mode, is_name_tok)
        for i in range(len(toks)):
            for rule in _TOKEN_RULES:
                rule(scan, i)
        scan.propagate()
        scan.phrases()
        scan.multiword_places()
        return scan.hits

    def _move_target(self, t: Tok, mode: str, placey) -> bool:
        w = t.low
        lx = self.lex
        if not wordy(w) or w in TITLES or w in lx.states or w in lx.world:
            return False
        if w in CARE_ABBR or w in STOPWORDS or w in lx.clinical:
            return False
        # hospital abbreviation: GH, GBMC, UMMC (ALL CAPS in mixed text, or a short non-word anywhere)
        if t.text.isupper() and 2 <= len(t.text) <= 6 and mode == "mixed":
            return not lx.is_common(w)
        if 2 <= len(w) <= 5 and not lx.is_common(w) and not lx.is_name(w) and w.isalpha() and (
                mode != "mixed" or (t.text.islower() and len(w) <= 4)):
            return True
        return placey(t) and not (w in lx.first and not (w in lx.places or w in lx.last))


class _Scan:
    """One note being read for places: its words, casing, the context offsets and the hits so far.

    Each ``rule_*`` method looks at word ``i``; they run word by word in the order of
    :data:`_TOKEN_RULES`, then the note-wide passes (propagation, phrases, multi-word places).
    """

    def __init__(self, rules: PlaceRules, text: str, toks: list[Tok], mode: str, is_name_tok: list[bool]):
        self.r, self.lex, self.text, self.toks, self.mode = rules, rules.lex, text, toks, mode
        self.is_name_tok = is_name_tok
        self.n = len(toks)
        self.hits: list[Hit] = []
        self.is_loc = [False] * self.n
        self.after_move = {m.end() for m in _MOVE_CTX.finditer(text)}
        self.after_prep = {m.end() for m in _PREP_CTX.finditer(text)}
        self.after_lives = {m.end() for m in _LIVES_CTX.finditer(text)}
        self.after_from = {m.end() for m in _FROM_CTX.finditer(text)}
        self.after_in = {m.end() for m in _IN_CTX.finditer(text)}

    def add(self, i: int, score: float) -> None:
        if not self.is_loc[i]:
            self.is_loc[i] = True
            self.hits.append((self.toks[i].start, self.toks[i].end, LOC, score))

    def gap(self, i: int, j: int) -> str:
        return self.text[self.toks[i].end:self.toks[j].start]

    def placey(self, t: Tok) -> bool:
        lx, w = self.lex, t.low
        if not wordy(w) or w in STOPWORDS or w in lx.clinical or w in CARE_ABBR or w in RELATIVES:
            return False
        if self.mode == "mixed":
            return t.text[0].isupper() and (not lx.is_common(w) or w in HOSPITAL_STEMS or w in lx.places or w in lx.states)
        return not lx.is_common(w) or w in HOSPITAL_STEMS or w in lx.places or w in lx.states

    # --- rules, one word at a time --------------------------------------------------------------
    def rule_facility(self, i: int) -> bool:
        """"X Hospital", "Baltimore Rehab", "Keeley House", "Grieco House NH"."""
        t, toks, mode = self.toks[i], self.toks, self.mode
        w = t.low
        if not (w in FACILITY_HEADS and i > 0 and re.fullmatch(r"\s{1,2}|-", self.gap(i - 1, i)) and (
                mode != "mixed" or t.text[0].isupper() or w in ("hospital", "hosp", "rehab", "nh"))):
            return False
        strong_head = w in ("hospital", "hosp", "hospitals", "infirmary", "sanitarium", "sanatorium")
        k, chain, real = i - 1, [], False
        while k >= 0 and i - k <= 3:
            c = toks[k]
            if self.placey(c) or (strong_head and mode == "mixed" and c.text.isupper() and 2 <= len(c.text) <= 5
                                  and c.low not in CARE_ABBR - {"md"}):
                real = True
            elif not (c.low in _FACILITY_MODIFIERS and (mode != "mixed" or c.text[0].isupper() or (
                    strong_head and c.low in ("general", "memorial", "community", "county", "regional", "university")))):
                break
            chain.append(k)
            if k == 0 or not re.fullmatch(r"\s{1,2}|\.\s?|-", self.gap(k - 1, k)):
                break
            k -= 1
        if chain and (real or strong_head):
            for k in chain:
                self.add(k, 0.8)
            self.add(i, 0.8)
        return True

    def rule_saint(self, i: int) -> bool:
        """"St. Agnes", "Saint Joseph", "st mary's"."""
        t, lx, mode = self.toks[i], self.lex, self.mode
        if not (t.low in ("st", "saint", "ste") and i + 1 < self.n and re.fullmatch(r"\.?\s{1,2}", self.gap(i, i + 1))):
            return False
        nxt = self.toks[i + 1]
        if (mode == "mixed" and t.text == "St" and len(nxt.text) == 1 and nxt.text.isupper()
                and self.text[nxt.end:nxt.end + 1] == "."):
            self.add(i, 0.6)  # "a bed @ St A."
            self.add(i + 1, 0.6)
        if ((nxt.low in lx.first or nxt.low in HOSPITAL_STEMS) and nxt.low not in STOPWORDS
                and nxt.low not in lx.medical and (mode != "mixed" or nxt.text[0].isupper())):
            self.add(i, 0.8)
            self.add(i + 1, 0.8)
        return True

    def rule_hospital_stems(self, i: int) -> bool:
        """Hospital stems: "Holy Cross", "Sacred Heart", "Good Samaritan"."""
        t, toks = self.toks[i], self.toks
        if not (t.low in HOSPITAL_STEMS and i + 1 < self.n and toks[i + 1].low in HOSPITAL_STEMS
                and re.fullmatch(r"\s{1,2}", self.gap(i, i + 1))):
            return False
        if self.mode != "mixed" or (t.text[0].isupper() and toks[i + 1].text[0].isupper()):
            self.add(i, 0.75)
            self.add(i + 1, 0.75)
        return True

    def rule_named_facility(self, i: int) -> None:
        """The first of facility / saint / hospital stems that applies (they exclude each other)."""
        _ = self.rule_facility(i) or self.rule_saint(i) or self.rule_hospital_stems(i)

    def rule_movement(self, i: int) -> None:
        """Movement context: "transferred to GH", "sent to Quartermain 3", "from BALTMORE rehab"."""
        t, toks = self.toks[i], self.toks
        if not (t.start in self.after_move and self.r._move_target(t, self.mode, self.placey)):
            return
        self.add(i, 0.7)
        k = i + 1
        while (k < self.n and k <= i + 2 and re.fullmatch(r"\s{1,2}|-", self.gap(k - 1, k)) and self.placey(toks[k])
               and toks[k].low not in FACILITY):
            self.add(k, 0.7)
            k += 1

    def rule_unit(self, i: int) -> None:
        """Units named after people or places: "Quartermain 3", "QUARTERMAIN7" after to/from/per/on."""
        t, lx, text = self.toks[i], self.lex, self.text
        if t.start not in self.after_prep:
            return
        if t.stem:
            stem = t.stem if t.stem[-1] not in "xq" and t.low not in lx.clinical else ""  # "x3", "q4"
            tail = text[t.end:t.end + 12]
        else:
            m = _UNIT_NUMBER.match(text, t.end)
            stem, tail = (t.low, text[m.end():m.end() + 12]) if m else ("", "")
        if (stem and len(stem) > 3 and stem not in lx.first and wordy(stem) and stem not in STOPWORDS
                and stem not in lx.clinical and not lx.is_common(stem) and stem not in lx.states
                and not _MEASURE_AFTER.match(tail)):
            self.add(i, 0.65)

    def rule_residence(self, i: int) -> None:
        """Residence: "lives in catonsville", "Sister called from Seattle"."""
        t, toks, lx, mode = self.toks[i], self.toks, self.lex, self.mode
        w = t.low
        strong = t.start in self.after_lives
        if not (strong or t.start in self.after_from):
            return
        if w in lx.states or w in lx.world:
            return  # a state or a country is not a Safe Harbor identifier
        if not ((w in lx.places and w not in STOPWORDS and (strong or not lx.is_common(w))) or (strong and self.placey(t)) or (
                strong and mode == "mixed" and t.text[:1].isupper() and wordy(w) and w not in STOPWORDS
                and w not in lx.clinical)):  # "Lives with son Brian in South Johnland"
            return
        if mode != "mixed" or t.text[0].isupper() or w in lx.places:
            self.add(i, 0.7)
            k = i + 1
            while (k < self.n and k <= i + 2 and re.fullmatch(r"[ \t]{1,2}", self.gap(k - 1, k)) and self.placey(toks[k])
                   and (toks[k].low in lx.places or (strong and mode == "mixed"))):
                self.add(k, 0.65)
                k += 1

    def rule_listed_after_in(self, i: int) -> None:
        """"Neil Meitz of Towson", "elderly housing in Lansdowne": a listed place after in/of/near."""
        t, lx = self.toks[i], self.lex
        w = t.low
        if (not self.is_loc[i] and t.start in self.after_in and w in lx.places and w not in lx.states and not lx.is_common(w)
                and len(w) > 3 and (self.mode != "mixed" or t.text[0].isupper()) and w not in lx.first):
            self.add(i, 0.6)

    def rule_listed_place(self, i: int) -> None:
        """A single-word US place that is not also a word or a person's name."""
        t, lx = self.toks[i], self.lex
        w = t.low
        if (w in lx.places and not self.is_loc[i] and not self.is_name_tok[i] and len(w) > 3 and not lx.is_common(w)
                and w not in lx.first and w not in lx.last and (self.mode != "mixed" or t.text[0].isupper())):
            self.add(i, 0.6)

    # --- note-wide passes -----------------------------------------------------------------------
    def propagate(self) -> None:
        """A word found as a place in context is a place wherever else it appears ("F-MICU/QUARTERMAIN/CCU")."""
        toks, lx = self.toks, self.lex
        found = {toks[i].low for i in range(self.n) if self.is_loc[i] and len(toks[i].low) > 3 and wordy(toks[i].low)
                 and not lx.is_common(toks[i].low) and toks[i].low not in FACILITY}
        for i, t in enumerate(toks):
            if not self.is_loc[i] and t.low in found and (self.mode != "mixed" or t.text[0].isupper()):
                self.add(i, 0.6)

    def phrases(self) -> None:
        """Well-known hospital names and US regions ("Holy Cross", "sacred heart Memorial", "Eastern Shore")."""
        low_text = self.text.lower()
        for phrase in HOSPITAL_PHRASES + US_REGIONS:
            start = low_text.find(phrase)
            while start >= 0:
                end = start + len(phrase)
                if (start == 0 or not low_text[start - 1].isalnum()) and (end >= len(low_text) or not low_text[end].isalnum()):
                    self.hits.append((start, end, LOC, 0.8))
                    m = _PHRASE_HEAD.match(low_text[end:end + 20])
                    if m:
                        self.hits.append((end, end + m.end(), LOC, 0.8))
                start = low_text.find(phrase, end)

    def multiword_places(self) -> None:
        """Multi-word places of the list ("daytona beach", "ellicott city")."""
        lx, text = self.lex, self.text
        low = text.lower()
        for end, p in lx.place_automaton.iter(low):
            s = end - len(p) + 1
            if (s > 0 and low[s - 1].isalnum()) or (end + 1 < len(low) and low[end + 1].isalnum()):
                continue
            if self.mode == "mixed" and not all(w[:1].isupper() for w in text[s:end + 1].split()):
                continue
            if all(lx.is_common(w) for w in p.split()) and self.mode != "mixed":
                continue
            self.hits.append((s, end + 1, LOC, 0.6))


_PHRASE_HEAD = re.compile(r"[ \t]{1,2}(memorial|hospital|hosp|medical center|med ctr|rehab|health center|academy|school|college)\b")
# The word-level rules in the order they run for each word.
_TOKEN_RULES = (
    _Scan.rule_named_facility, _Scan.rule_movement, _Scan.rule_unit, _Scan.rule_residence,
    _Scan.rule_listed_after_in, _Scan.rule_listed_place,
)
