"""Rules for the structured parts of a note: header fields, signatures, addresses and facilities.

Clinical notes carry much of their PHI in fixed places: "Pt: BAKER, BRADY C.", "Signed: Ruth
Mccann, MD", "-- R. Gates, PA-C", "Lives at 1973 Isaac Ports, Nathanburgh, KY 32215", "PCP Dr Harper
at West Krystalburgh Community Health Center", "Note - 2/7/15 - MGH, Rm 229B". These rules read
such places; the words they take still pass the lexicons, so a field label never swallows clinical
text.
"""

from __future__ import annotations

import re

from clinitune.phi.lexicons import STOPWORDS, Lexicons
from clinitune.phi.types import PhiType

Hit = tuple[int, int, str, float]
_RELATIVE_WORDS = frozenset(
    """son daughter wife husband spouse sister brother mother father niece nephew aunt uncle cousin grandson
    granddaughter grandmother grandfather friend partner neighbor guardian self""".split())
NAME, LOC = PhiType.NAME.value, PhiType.LOCATION.value

STATE_ABBR = (
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK "
    "OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR"
).split()
# State abbreviations that are also words or credentials: a city or ZIP must vouch for them.
_AMBIGUOUS_STATES = {"MD", "PA", "OR", "IN", "ME", "OK", "HI", "DE", "CO", "ID", "LA", "MA", "MS", "OH", "AL", "DC"}
_STATE_NAMES = (
    "Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|Hawaii|Idaho|"
    "Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|Minnesota|Mississippi|"
    "Missouri|Montana|Nebraska|Nevada|New Hampshire|New Jersey|New Mexico|New York|North Carolina|North Dakota|"
    "Ohio|Oklahoma|Oregon|Pennsylvania|Rhode Island|South Carolina|South Dakota|Tennessee|Texas|Utah|Vermont|"
    "Virginia|Washington|West Virginia|Wisconsin|Wyoming"
)
_CAP = r"[A-Z][A-Za-z'.-]*"

# "Pt:", "PATIENT:", "Patient Name:", "Signed:", "Electronically signed by", "Attending:", "PCP:"
_NAME_LABEL = re.compile(
    r"(?:^|(?<=[\s|(]))(?:(?:pt|patient(?:\s+name)?|name|author|signed|ordering|ordering\s+(?:md|physician|provider)|"
    r"attending|pcp|referring(?:\s+(?:md|physician|provider))?|resident|fellow|intern|primary\s+nurse|"
    r"nurse|provider|physician|surgeon|cc|emergency\s+contact|contact|guardian|proxy|hcp|poa)[ \t]*[:#][ \t]*"
    r"|(?:signed\s+by|e-?signed\s+by|electronically\s+signed\s+by|dictated\s+by|transcribed\s+by|"
    r"paged\s+covering\s+md)[ \t]*:?[ \t]+)",
    re.I | re.M,
)
_NAME_WORD = re.compile(r"(?:[A-Za-z][A-Za-z'’-]*\.?|[A-Z]\.(?:[A-Z]\.)*)")
_STOP_AFTER_NAME = re.compile(r"[ \t]{2,}|\s*[|\n;]|\s+(?:MRN|DOB|MR#|Unit|Acct|on|at|re|x\d)\b", re.I)
# Initials used for the patient in the narrative: "H.F. had no acute events"
_INITIALS = re.compile(
    r"(?<![\w.])[A-Z]\.\s?[A-Z]\.(?:\s?[A-Z]\.)?(?=[ \t]+(?:had|has|is|was|denies|denied|reports|reported|states|"
    r"stated|remains|remained|c/o|complains|continues|feels|slept|ate|tolerated|tolerating|still|now|appears|"
    r"ambulated|refused|requests|requested|wants)\b)"
)
_NOT_INITIALS = {"A.M.", "P.M.", "U.S.", "M.D.", "D.O.", "R.N.", "N.P.", "P.A.", "B.S.", "B.A.", "M.S.",
                 "N.B.", "I.V.", "P.O.", "Q.D.", "B.I.D.", "T.I.D.", "O.D.", "O.S.", "O.U.", "A.D.", "E.D."}
# Hospital acronyms: "MGH", "NWRMC", "SCMC" (a number of clinical ones are excluded by the lexicon)
_HOSP_ACRONYM = re.compile(r"\b[A-Z]{1,5}(?:RMC|MC|GH|MH|UH|HC)\b")
_ACRONYM_BEFORE_PLACE = re.compile(
    r"\b([A-Z]{2,6})(?:(?=,?[ \t]+(?:Rm|Room|Bed|ED|ER|EW|ICU|MICU|CCU|Campus)\b)|[ \t]+(?!(?:Jan|Feb|Mar|Apr|May|Jun|Jul|"
    r"Aug|Sep|Oct|Nov|Dec)[a-z]*\b)(?P<unit>[A-Z][a-z]+[ \t]+\d{1,2})\b(?!,? \d{4}|[/.:-]\d))"
)
# "-- R. Gates, PA-C" signature lines; "daisy ramos, 84F, DOB ..." header lines
_SIGNATURE = re.compile(r"^[ \t]*--[ \t]+(?P<name>[A-Za-z][A-Za-z.'’ -]{1,40}?),?[ \t]+(?:MD|DO|RN|NP|PA-C|PA|LPN|RRT|CNA|BSN|PharmD)\b", re.M)
_HEADER_NAME = re.compile(r"^[ \t]*(?P<name>[A-Za-z][A-Za-z.'’ -]{1,40}?(?:,[ \t]*[A-Za-z][A-Za-z.'’ -]{0,30}?)?),[ \t]*\d{1,3}[ \t]?[MF]\b", re.M)
_ROOM = re.compile(r"\b(?:rm|room|bed|bay)\.?[ \t]*#?[ \t]*(\d{1,4}[A-Za-z]?)\b(?![./:-]\d)", re.I)
_UNIT = re.compile(r"\b(?:[Oo]n|[Tt]o|[Ff]rom|--|-)[ \t]+([A-Z][a-z]+)[ \t]+(\d{1,2})(?=,?[ \t]*(?:rm|room|bed)\b|[ \t]*[.\n]|$)", re.M)
_CITY_STATE = re.compile(
    r"(?P<city>" + _CAP + r"(?:[ \t]" + _CAP + r"){0,2}),[ \t]+(?P<state>" + "|".join(STATE_ABBR) + "|" + _STATE_NAMES
    + r")\b(?P<zip>[ \t]+\d{5}(?:-\d{4})?)?"
)
_ADDRESS_LABEL = re.compile(
    r"\b(?:address|home\s+address|mailing\s+address|lives\s+at|resides\s+at|residing\s+at)\s*:?[ \t]+(?=\d)", re.I
)
# a sentence ends at ". X" unless the period closes a street abbreviation ("Clover St. in ...")
_SENTENCE_END = re.compile(r"(?<!\b(?:St|Rd|Dr|Ln|Ct|Pl|Av))(?<!\b(?:Ave|Apt|Ste|Hwy))(?<!\bBlvd)\.(?=\s+[A-Z])|;")
_FACILITY = re.compile(
    r"(?P<lead>(?:" + _CAP + r"[ \t]+){1,4})(?P<kind>(?:Community[ \t]+)?(?:Health|Medical|Rehabilitation|Care|Surgery|"
    r"Surgical|Cancer|Heart|Dialysis|Wellness|Treatment|Senior|Nursing)[ \t]+(?:Center|Centre|Ctr|Living|Home)|"
    r"Family[ \t]+(?:Practice|Medicine)|Internal[ \t]+Medicine(?:[ \t]+Associates)?|Medical[ \t]+(?:Group|Associates)|"
    r"Nursing[ \t]+(?:&|and)[ \t]+Rehab(?:ilitation)?|Assisted[ \t]+Living|Urgent[ \t]+Care|Rehab(?:ilitation)?[ \t]+"
    r"(?:Center|Hospital)|(?:Memorial|University|General|Community|Regional|Children's)[ \t]+Hospital|Associates|"
    r"Pediatrics|Hospice|Manor|Infirmary)\b"
)
# After a place: ", North Calvinmouth." — the town of a facility or an address
_TRAILING_TOWN = re.compile(r"(?:,|[ \t]+in)[ \t]+(" + _CAP + r"(?:[ \t]" + _CAP + r"){0,2})(?=[ \t]*(?:[.;\n]|$|,?[ \t]+\d{5}|[ \t]+(?:on|Former|Works|Retired|No)\b))")
_PAGER = re.compile(
    r"(?:\b(?:MD|DO|RN|NP|PA-C|PA|LPN|BSN|RRT|CNA|PharmD)\b,?[ \t]*(?:pager|pgr|beeper)?[ \t]*[p#][ \t]?|"
    r"\b(?:pager|pgr|beeper)[ \t]*#?[ \t]*:?[ \t]*)(?P<num>\(?\d[\d() .-]{3,14}\d)"
)
_PAGED_AT = re.compile(r"\bpaged?\b[^\n]{0,60}?\bat[ \t]+(?P<num>\d[\d-]{3,11}\d)\b", re.I)


class StructureRules:
    def __init__(self, lex: Lexicons):
        self.lex = lex

    def _nameish(self, word: str) -> bool:
        w = word.lower().rstrip(".").replace("’", "'")
        if w.endswith("'s"):
            w = w[:-2]
        w = w.replace("'", "")
        if not w or not w.replace("-", "").isalpha():
            return False
        if len(w) == 1:
            return True
        if w in STOPWORDS or w in self.lex.clinical or w in _RELATIVE_WORDS:
            return False
        return self.lex.is_name(w) or not self.lex.is_common(w) or word[:1].isupper()

    def detect(self, text: str) -> list[Hit]:
        hits: list[Hit] = []
        lx = self.lex
        mixed = re.search(r"[a-z]{3}", text) is not None and re.search(r"[A-Z][a-z]", text) is not None
        # names after field labels, up to the end of the field
        for m in _NAME_LABEL.finditer(text):
            pos = m.end()
            stop = _STOP_AFTER_NAME.search(text, pos)
            end = stop.start() if stop else min(len(text), pos + 60)
            seg = text[pos:min(end, pos + 60)]
            taken_end, words = pos, 0
            for w in re.finditer(r"(?:Dr\.?|DR\.?)\s+|" + _NAME_WORD.pattern + r"|,\s*", seg):
                tok = w.group()
                if tok.strip() in ("", ","):
                    continue
                if re.fullmatch(r"(?:Dr|DR)\.?\s+", tok):
                    continue
                if not self._nameish(tok) or tok.rstrip(".").upper() in ("MD", "DO", "RN", "NP", "PA", "PA-C", "BSN", "LPN"):
                    break
                words += 1
                taken_end = pos + w.end()
                if words >= 4:
                    break
            if words:
                start = pos + (len(seg) - len(seg.lstrip()))
                s_text = text[start:taken_end]
                lead = re.match(r"(?:Dr|DR)\.?\s+", s_text)
                if lead:
                    start += lead.end()
                hits.append((start, taken_end, NAME, 0.8))
        for m in _INITIALS.finditer(text):
            letters = m.group().replace(" ", "")
            if letters not in _NOT_INITIALS and letters.replace(".", "").lower() not in lx.clinical:
                hits.append((m.start(), m.end(), NAME, 0.6))
        # places
        for m in _HOSP_ACRONYM.finditer(text if mixed else ""):
            w = m.group().lower()
            if w not in lx.clinical and len(w) >= 3 and not lx.is_common(w):
                hits.append((m.start(), m.end(), LOC, 0.6))
        for m in _ACRONYM_BEFORE_PLACE.finditer(text if mixed else ""):
            w = m.group(1).lower()
            if not lx.is_common(w) or w not in lx.english:  # "MGH, Rm 229B", "PMH Kirk 13", "BIBA to PMH ED"
                if w in ("icu", "micu", "ccu", "ed", "er", "ew", "or", "pt", "dob", "mrn"):
                    continue
                hits.append((m.start(1), m.end(1), LOC, 0.65))
                if m.group("unit") and m.group("unit").split()[0].lower() not in STOPWORDS:
                    hits.append((m.start("unit"), m.end("unit"), LOC, 0.6))
        for rx in (_SIGNATURE, _HEADER_NAME):
            for m in rx.finditer(text):
                words = m.group("name").replace(",", " ").split()
                if words and all(self._nameish(wd) for wd in words) and len(words) <= 4:
                    hits.append((m.start("name"), m.end("name"), NAME, 0.75))
        for m in _ROOM.finditer(text):
            hits.append((m.start(1), m.end(1), LOC, 0.6))
        for m in _UNIT.finditer(text):
            if m.group(1).lower() not in lx.clinical and m.group(1).lower() not in STOPWORDS:
                hits.append((m.start(1), m.end(2), LOC, 0.6))
        for m in _CITY_STATE.finditer(text):
            state = m.group("state")
            city_words = m.group("city").split()
            while city_words and (city_words[0].lower() in STOPWORDS or city_words[0].lower() in lx.clinical):
                city_words.pop(0)
            if not city_words:
                continue
            last = city_words[-1].lower().rstrip(".")
            if not m.group("zip"):
                if not mixed or city_words[-1].isupper() or last in lx.clinical:
                    continue
                if state in _AMBIGUOUS_STATES and not (last in lx.places or (last not in lx.first and not lx.is_common(last))):
                    continue
            city = " ".join(city_words)
            cs = m.start("city") + m.group("city").rfind(city)
            hits.append((cs, m.end("state"), LOC, 0.75))
            if m.group("zip"):
                z = m.group("zip")
                hits.append((m.end("zip") - len(z.strip()), m.end("zip"), PhiType.ZIP.value, 0.9))
        for m in _ADDRESS_LABEL.finditer(text):
            nl = text.find("\n", m.end())
            end = len(text) if nl < 0 else nl
            stop = _SENTENCE_END.search(text, m.end(), end)
            end = stop.start() if stop else end
            if end - m.end() <= 120:
                hits.append((m.end(), end, LOC, 0.75))
        for m in _FACILITY.finditer(text):
            lead = m.group("lead").split()
            start = m.start("lead")
            while lead and (lead[0].lower().rstrip(".") in STOPWORDS or lead[0].lower().rstrip(".:") in lx.clinical
                            or lead[0].isupper() and len(lead[0]) > 1 and lead[0].lower() in lx.clinical):
                start = text.index(lead[0], start) + len(lead[0])
                lead.pop(0)
            if not lead:
                continue
            start = text.index(lead[0], start)
            hits.append((start, m.end(), LOC, 0.75))
            t = _TRAILING_TOWN.match(text, m.end())
            if t:
                hits.append((t.start(1), t.end(1), LOC, 0.65))
        for m in _PAGER.finditer(text):
            if sum(c.isdigit() for c in m.group("num")) >= 4:
                hits.append((m.start("num"), m.end("num"), PhiType.PHONE.value, 0.75))
        for m in _PAGED_AT.finditer(text):
            hits.append((m.start("num"), m.end("num"), PhiType.PHONE.value, 0.7))
        return hits
