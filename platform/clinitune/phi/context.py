"""Name and place rules: lexicons read in context, over the tokens of one note.

Clinical notes come in three casings (mixed, ALL CAPS, lower case), so capitalisation is a signal
only in mixed-case text. A token becomes a name through a title ("Dr. X", "Mrs x"), a relative
("pt's wife Y", "son bill"), a credential ("Nancy Jones, RN"), a first name before a surname, or
the name lists when the word is not also an English, medical or clinical word. Places come from
facility patterns ("X Hospital", "St. Agnes"), movement context ("transferred to GH", "from
Quartermain 3"), residence context ("lives in X") and the US place list.
"""

from __future__ import annotations

import re

from clinitune.phi.lexicons import STOPWORDS, Lexicons
from clinitune.phi.types import PhiType

Hit = tuple[int, int, str, float]
NAME, LOC = PhiType.NAME.value, PhiType.LOCATION.value

_TOKEN = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)*")
_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")

TITLES = frozenset("dr doctor drs mr mrs ms miss mister mssr prof professor sr sister".split()) - {"sister", "sr"}
CREDENTIALS = frozenset(
    "rn md np pa rrt lpn cna crnp aprn msw lcsw licsw pharmd phd rph pt ot slp rd ccrn bsn msn dnp fnp acnp "
    "pa-c mba mph facc facs do crt licsw lsw cns".split()
)
WEAK_CREDENTIALS = frozenset({"pa", "pt", "ot", "do", "rd", "slp", "rph"})
RELATIVES = frozenset(
    """son sons daughter daughters dtr dtrs wife husband hus spouse sister sisters sis brother brothers bro
    mother mom mother-in-law father dad father-in-law niece nieces nephew nephews aunt uncle cousin cousins
    grandson grandsons granddaughter granddaughters grandaughter grandaughters grandchild grandchildren
    grandmother grandfather grandma grandpa stepson stepdaughter step-son step-daughter friend friends
    boyfriend girlfriend fiance fiancee partner companion neighbor neighbour guardian proxy hcp poa
    sil dil in-law in-laws caregiver caretaker significant roommate""".split()
)
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
_PERSON_VERBS = frozenset("called calls phoned phones visited visits came updated spoke spoken talked stayed wants asked asks states stated".split())
_PHONE_LABELS = frozenset("cell cellphone mobile phone home work office pager beeper tel telephone".split())
_WITH_VERBS = frozenset("spoke speak spoken talked talk consult consulted discussed met meeting conferred".split())
_REL_FILLER = frozenset("is named name in law step hcp proxy poa".split())
UNIT_WORDS = frozenset("unit floor ward pod wing tower building bldg".split())
# Abbreviations met after "to"/"from" that are services or units, never a facility of its own.
CARE_ABBR = frozenset(
    """icu micu sicu ccu csru cvicu nicu picu tsicu pacu ed er ew eu or ir ep ct mri cath icu's us gi gu id
    snf nh ltac ltach rehab vna ems ccu's pt ot rt sw cm md rn np pa hd dialysis floor unit tele ob
    osh olh pcu vicu nsicu ctic cticu ctsicu csicu mcu imcu sdu bb va vamc mn noc av ng tng pnd pyxis omnicell
    fla calif penn mass conn al ak az ar ca co ct de fl ga hi ia il in ks ky la me md mi mn mo ms mt nc nd ne nh nj nm
    nv ny oh ok or pa ri sc sd tn tx ut va vt wa wi wv wy dc
    ac bipap cpap ps simv imv cmv prvc trach ett ngt ogt peg picc tlc iv po pr sl sq im npo prn""".split()
)


class Tok:
    """A word of the note. ``low`` is lower case without a possessive; a word holding digits
    ("SaO2", "2L", "Q3") keeps them in ``low`` and is never a name, except a place name with a
    unit number glued on ("QUARTERMAIN7"), whose letters are in ``stem``."""

    __slots__ = ("start", "end", "text", "low", "stem")

    def __init__(self, start: int, end: int, text: str, low: str, stem: str):
        self.start, self.end, self.text, self.low, self.stem = start, end, text, low, stem


_UNIT_GLUED = re.compile(r"([A-Za-z]{4,})(\d{1,2})")


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


def _wordy(w: str) -> bool:
    return w.isalpha() or (w.replace("'", "").isalpha() and w[0] != "'")


class ContextRules:
    def __init__(self, lex: Lexicons):
        self.lex = lex

    # --- token predicates -------------------------------------------------------------------
    def _title_case(self, t: Tok) -> bool:
        return t.text[0].isupper() and (len(t.text) == 1 or not t.text.isupper() or len(t.text) > 1)

    def _is_initial(self, text: str, t: Tok) -> bool:
        return len(t.text) == 1 and t.text.isalpha() and (t.text.isupper() or text[t.end:t.end + 1] == ".")

    def _frequent_name(self, w: str) -> bool:
        """A name by the lists alone: a first name or a frequent surname, not an ordinary word."""
        lx = self.lex
        return (w in lx.first or w in lx.common_last) and len(w) > 2 and _wordy(w) and not lx.is_common(w)

    def _unambiguous_name(self, w: str) -> bool:
        lx = self.lex
        return _wordy(w) and (w in lx.first or w in lx.last) and len(w) > 2 and not lx.is_common(w)

    def _namey(self, t: Tok, mode: str, loose: bool = False) -> bool:
        """Could this token be part of a person's name (continuing one already started)?"""
        w = t.low
        if not _wordy(w) or w in STOPWORDS or w in self.lex.clinical or w in CREDENTIALS or w in TITLES:
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
        if not _wordy(w) or w in STOPWORDS or w in CREDENTIALS or w in TITLES or w in RELATIVES:
            return len(t.text) == 1 and t.text.isalpha() and w not in ("a",)
        if self.lex.is_name(w) or len(t.text) == 1:
            return True
        if mode == "mixed":
            return t.text[0].isupper() or not self.lex.is_common(w)
        return w not in self.lex.clinical and (not self.lex.is_common(w) or len(w) > 3)

    def _surname_after(self, t: Tok, mode: str) -> bool:
        """A word continuing a name already found ("Ferdinand Halfpenny", "EDWIN PRZYBYLO")."""
        w = t.low
        if not _wordy(w) or w in STOPWORDS or w in CREDENTIALS or w in TITLES or w in RELATIVES:
            return False
        if mode == "mixed":
            return t.text[0].isupper() and (not t.text.isupper() or not self.lex.is_common(w))
        return (self.lex.is_name(w) and w not in self.lex.clinical) or (not self.lex.is_common(w) and len(w) > 2)

    def detect(self, text: str, toks: list[Tok]) -> list[Hit]:
        mode = casing(text)
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
                    self._surname_after(toks[k], mode) or (len(toks[k - 1].text) == 1 and _wordy(toks[k].low)
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
                              and nxt.low not in lx.clinical and nxt.low not in lx.english))
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
                    if _wordy(c.low) and c.low not in STOPWORDS and c.low not in RELATIVES and (
                            self._unambiguous_name(c.low)
                            or (c.low in lx.first and c.low not in lx.clinical)
                            or (mode == "mixed" and c.text[0].isupper() and (lx.is_name(c.low) or not lx.is_common(c.low)))
                            or (mode != "mixed" and not lx.is_common(c.low) and len(c.low) > 2)):
                        add_name(j, 0.8)
                        coordinated(run_from(j, 0.75, 1), 0.75)
                # "Hank Przybylo (son)": the relative names the words before it
                if i >= 1 and re.fullmatch(r"\s*[(,-]\s*", gap(i - 1, i)) and self._namey(toks[i - 1], mode):
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
                                taken == 0 and k >= 1 and self._is_initial(text, toks[k - 1]) and _wordy(c.low)
                                and text[toks[k - 1].end:toks[k - 1].end + 1] == "." and c.low not in STOPWORDS) or (
                                not weak and taken == 0 and lx.is_name(c.low) and c.low not in STOPWORDS
                                and c.low not in lx.clinical and (c.low not in lx.english or c.low in lx.first)) or (
                                not weak and _wordy(c.low) and len(c.low) > 2 and c.low not in STOPWORDS
                                and c.low not in lx.clinical and not lx.is_common(c.low)) or (
                                not weak and taken == 0 and mode == "mixed" and c.text[0].isupper() and _wordy(c.low)
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
                if (_wordy(c.low) and c.low not in STOPWORDS and c.low not in lx.clinical and c.low not in CARE_ABBR
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
                    and adjacent(i, i + 1, r"\.\s{1,2}") and (self._namey(toks[i + 1], mode) or score[i + 1] > 0)):
                add_name(i, 0.8)
                add_name(i + 1, 0.8)
            # Rule: a contact's name before a phone label ("Lopie Certusi cell# 410-322-1419")
            if w in _PHONE_LABELS and i > 0 and re.match(r"\s*(?:#|no\.?|number)?\s*[:#]?\s*[(]?\d{3}", text[t.end:t.end + 12]):
                k = i - 1
                while k >= 0 and k >= i - 2 and re.fullmatch(r"\s{1,2}|\s?[-,:]\s?", gap(k, k + 1)):
                    c = toks[k]
                    if not (_wordy(c.low) and c.low not in STOPWORDS and c.low not in RELATIVES and c.low not in lx.clinical
                            and c.low not in CREDENTIALS and c.low not in TITLES
                            and (self._unambiguous_name(c.low) or (mode == "mixed" and c.text[0].isupper()
                                                                    and (lx.is_name(c.low) or not lx.is_common(c.low))))):
                        break
                    add_name(k, 0.7)
                    k -= 1
            # Rule: "spoke with patty hoeller", "consult with Mary Smith": a first name and a surname after "with"
            if (w in _WITH_VERBS and i + 3 < n and toks[i + 1].low == "with" and toks[i + 2].low in lx.first
                    and toks[i + 2].low not in STOPWORDS and toks[i + 2].low not in lx.clinical
                    and adjacent(i + 2, i + 3, r"\s{1,2}") and _wordy(toks[i + 3].low) and len(toks[i + 3].low) > 2
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
                    if self._namey(c, mode) or (gap(a, b) == "-" and _wordy(c.low) and not lx.is_common(c.low)):
                        add_name(j, 0.7)
                    elif j == i - 1 and self._is_initial(text, c) and mode != "lower":
                        add_name(j, 0.7)
                    elif (j == i + 1 and toks[i].low in lx.first and mode != "mixed" and _wordy(c.low) and len(c.low) > 2
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
        hits.extend(self._places(text, toks, mode, [s > 0 for s in score]))
        return hits

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

    def _places(self, text: str, toks: list[Tok], mode: str, is_name_tok: list[bool]) -> list[Hit]:
        lx = self.lex
        n = len(toks)
        hits: list[Hit] = []
        is_loc = [False] * n
        after_move = {m.end() for m in _MOVE_CTX.finditer(text)}
        after_prep = {m.end() for m in _PREP_CTX.finditer(text)}
        after_lives = {m.end() for m in _LIVES_CTX.finditer(text)}
        after_from = {m.end() for m in _FROM_CTX.finditer(text)}
        after_in = {m.end() for m in _IN_CTX.finditer(text)}

        def add(i: int, score: float) -> None:
            if not is_loc[i]:
                is_loc[i] = True
                hits.append((toks[i].start, toks[i].end, LOC, score))

        def gap(i: int, j: int) -> str:
            return text[toks[i].end:toks[j].start]

        def placey(t: Tok) -> bool:
            w = t.low
            if not _wordy(w) or w in STOPWORDS or w in lx.clinical or w in CARE_ABBR or w in RELATIVES:
                return False
            if mode == "mixed":
                return t.text[0].isupper() and (not lx.is_common(w) or w in HOSPITAL_STEMS or w in lx.places or w in lx.states)
            return not lx.is_common(w) or w in HOSPITAL_STEMS or w in lx.places or w in lx.states

        for i, t in enumerate(toks):
            w = t.low
            # "X Hospital", "Baltimore Rehab", "Keeley House", "Grieco House NH"
            if w in FACILITY_HEADS and i > 0 and re.fullmatch(r"\s{1,2}|-", gap(i - 1, i)) and (
                    mode != "mixed" or t.text[0].isupper() or w in ("hospital", "hosp", "rehab", "nh")):
                strong_head = w in ("hospital", "hosp", "hospitals", "infirmary", "sanitarium", "sanatorium")
                k, chain, real = i - 1, [], False
                while k >= 0 and i - k <= 3:
                    c = toks[k]
                    if placey(c) or (strong_head and mode == "mixed" and c.text.isupper() and 2 <= len(c.text) <= 5
                                     and c.low not in CARE_ABBR - {"md"}):
                        real = True
                    elif not (c.low in _FACILITY_MODIFIERS and (mode != "mixed" or c.text[0].isupper() or (
                            strong_head and c.low in ("general", "memorial", "community", "county", "regional", "university")))):
                        break
                    chain.append(k)
                    if k == 0 or not re.fullmatch(r"\s{1,2}|\.\s?|-", gap(k - 1, k)):
                        break
                    k -= 1
                if chain and (real or strong_head):
                    for k in chain:
                        add(k, 0.8)
                    add(i, 0.8)
            # "St. Agnes", "Saint Joseph", "st mary's"
            elif w in ("st", "saint", "ste") and i + 1 < n and re.fullmatch(r"\.?\s{1,2}", gap(i, i + 1)):
                nxt = toks[i + 1]
                if (mode == "mixed" and t.text == "St" and len(nxt.text) == 1 and nxt.text.isupper()
                        and text[nxt.end:nxt.end + 1] == "."):
                    add(i, 0.6)  # "a bed @ St A."
                    add(i + 1, 0.6)
                if ((nxt.low in lx.first or nxt.low in HOSPITAL_STEMS) and nxt.low not in STOPWORDS
                        and nxt.low not in lx.medical and (mode != "mixed" or nxt.text[0].isupper())):
                    add(i, 0.8)
                    add(i + 1, 0.8)
            # hospital stems: "Holy Cross", "Sacred Heart", "Good Samaritan"
            elif w in HOSPITAL_STEMS and i + 1 < n and toks[i + 1].low in HOSPITAL_STEMS and re.fullmatch(r"\s{1,2}", gap(i, i + 1)):
                if mode != "mixed" or (t.text[0].isupper() and toks[i + 1].text[0].isupper()):
                    add(i, 0.75)
                    add(i + 1, 0.75)
            # movement context: "transferred to GH", "sent to Quartermain 3", "from BALTMORE rehab"
            if t.start in after_move and self._move_target(t, mode, placey):
                add(i, 0.7)
                k = i + 1
                while (k < n and k <= i + 2 and re.fullmatch(r"\s{1,2}|-", gap(k - 1, k)) and placey(toks[k])
                       and toks[k].low not in FACILITY):
                    add(k, 0.7)
                    k += 1
            # units named after people or places: "Quartermain 3", "QUARTERMAIN7" after to/from/per/on
            if t.start in after_prep:
                if t.stem:
                    stem = t.stem if t.stem[-1] not in "xq" and t.low not in lx.clinical else ""  # "x3", "q4"
                    tail = text[t.end:t.end + 12]
                else:
                    m = _UNIT_NUMBER.match(text, t.end)
                    stem, tail = (w, text[m.end():m.end() + 12]) if m else ("", "")
                if (stem and len(stem) > 3 and stem not in lx.first and _wordy(stem) and stem not in STOPWORDS
                        and stem not in lx.clinical and not lx.is_common(stem) and stem not in lx.states
                        and not _MEASURE_AFTER.match(tail)):
                    add(i, 0.65)
            # residence: "lives in catonsville", "Sister called from Seattle"
            strong = t.start in after_lives
            if strong or t.start in after_from:
                if w in lx.states or w in lx.world:
                    pass  # a state or a country is not a Safe Harbor identifier
                elif (w in lx.places and w not in STOPWORDS and (strong or not lx.is_common(w))) or (strong and placey(t)):
                    if mode != "mixed" or t.text[0].isupper() or w in lx.places:
                        add(i, 0.7)
                        k = i + 1
                        while (k < n and k <= i + 2 and re.fullmatch(r"\s{1,2}", gap(k - 1, k)) and placey(toks[k])
                               and toks[k].low in lx.places):
                            add(k, 0.65)
                            k += 1
            # "Neil Meitz of Towson", "elderly housing in Lansdowne": a listed place after in/of/near
            if (not is_loc[i] and t.start in after_in and w in lx.places and w not in lx.states and not lx.is_common(w)
                    and len(w) > 3 and (mode != "mixed" or t.text[0].isupper()) and w not in lx.first):
                add(i, 0.6)
            # single-word US place not also a word or a person's name
            if w in lx.places and not is_loc[i] and not is_name_tok[i] and len(w) > 3 and not lx.is_common(w):
                if w not in lx.first and w not in lx.last:
                    if mode != "mixed" or t.text[0].isupper():
                        add(i, 0.6)
        # a word found as a place in context is a place wherever else it appears ("F-MICU/QUARTERMAIN/CCU")
        found = {toks[i].low for i in range(n) if is_loc[i] and len(toks[i].low) > 3 and _wordy(toks[i].low)
                 and not lx.is_common(toks[i].low) and toks[i].low not in FACILITY}
        for i, t in enumerate(toks):
            if not is_loc[i] and t.low in found and (mode != "mixed" or t.text[0].isupper()):
                add(i, 0.6)
        # well-known hospital names ("Holy Cross", "sacred heart Memorial")
        low_text = text.lower()
        for phrase in HOSPITAL_PHRASES + US_REGIONS:
            start = low_text.find(phrase)
            while start >= 0:
                end = start + len(phrase)
                if (start == 0 or not low_text[start - 1].isalnum()) and (end >= len(low_text) or not low_text[end].isalnum()):
                    hits.append((start, end, LOC, 0.8))
                    m = re.match(r"[ \t]{1,2}(memorial|hospital|hosp|medical center|med ctr|rehab|health center|academy|school|college)\b", low_text[end:end + 20])
                    if m:
                        hits.append((end, end + m.end(), LOC, 0.8))
                start = low_text.find(phrase, end)
        # multi-word places ("daytona beach", "ellicott city")
        low = text.lower()
        for end, p in lx.place_automaton.iter(low):
            s = end - len(p) + 1
            if (s > 0 and low[s - 1].isalnum()) or (end + 1 < len(low) and low[end + 1].isalnum()):
                continue
            if mode == "mixed" and not all(w[:1].isupper() for w in text[s:end + 1].split()):
                continue
            if all(lx.is_common(w) for w in p.split()) and mode != "mixed":
                continue
            hits.append((s, end + 1, LOC, 0.6))
        return hits

    def _move_target(self, t: Tok, mode: str, placey) -> bool:
        w = t.low
        lx = self.lex
        if not _wordy(w) or w in TITLES or w in lx.states or w in lx.world:
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
