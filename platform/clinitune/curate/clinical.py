"""Does a line carry clinical content? The guard that boilerplate removal never crosses.

``clinical_evidence(line)`` names the first kind of clinical content found in one line, or
None. Boilerplate removal (``curate.boilerplate``) never removes a line with any evidence, however
often it repeats. The kinds, each from a named vocabulary (``data/SOURCES.json``):

* ``section_header`` - the line, or its ``Header:`` part, is a clinical section name in any style
  (``# HPI``, ``HPI:``, ``HISTORY OF PRESENT ILLNESS``, ``Assessment & Plan``, ``A/P:``), from
  medspaCy's section rules, HL7 C-CDA section titles and their usual abbreviations
  (``data/section_headers.txt``);
* ``drug`` - a drug name from the ``drug-named-entity-recognition`` package's lexicon (DrugBank,
  MeSH, MedlinePlus and NHS names; single-word names, common English words left out unless they
  are a drug's own canonical name, e.g. aspirin);
* ``diagnosis`` - a word of the CMS ICD-10-CM titles of chapters A-T (diseases, symptoms, signs,
  injuries, poisonings and allergic reactions; not external causes V-Y nor the health-services
  chapter Z), less spaCy's English stop words, the ICD's own qualifiers (words used mostly
  after a title's first comma: "unspecified", "initial", "left"...) and the container nouns of
  "Abnormal findings on ...", "Abnormal results of ..." titles;
* ``negation`` - a negated finding: the line (after a bullet or ``Header:`` part) opens with a
  NegEx/pyConText negation trigger (medspaCy's context rules; plus "denies", "never") and is
  short or names a clinical term ("No Known Allergies.", "Denies chest pain"), or is a negative
  or normal answer alone ("Noncontributory.", "Tobacco use: never", "WNL");
* ``patient_statement`` - a statement about the patient: the line opens with "Patient", "Pt",
  "The patient", "He" or "She" followed by a lower-case word ("Patient has never smoked.",
  "Patient currently has Aetna."), or gives an age ("Jane is a 45 year-old female.");
* ``plan`` - an order or plan: the line opens with a plan verb ("Follow up in one year.",
  "Continue lisinopril.", "Return if worse.");
* ``data`` - the line is only a date, time or number ("2021-03-12", "10:22 AM");
* ``measurement`` - a number with a clinical unit (``81 mg``, ``120/80 mmHg``, ``98.6 F``) or a
  vital/lab abbreviation with a value (``BP 120/80``, ``K 4.1``; abbreviations from the project's
  ``phi/data/clinical_terms.txt`` vitals, labs, devices and imaging lists).

Words of a diagnosis that are also ordinary words ("portal" of portal hypertension, "results" of
abnormal results) make a template line holding them clinical: the guard errs towards keeping. Such
a word inside a proper name (a run of Titlecase words with a word no ICD title uses: "Copper
Canyon Regional Health", "Internal Medicine") is the name's and counts for nothing, unless it
heads a diagnosis ("Graves Disease").

The vocabulary is built once per process (about 2 s: the drug lexicon is a compressed pickle).
"""

from __future__ import annotations

import gzip
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from clinitune.terminology.drugs import drug_names

log = logging.getLogger(__name__)

EVIDENCE_KINDS = ("section_header", "drug", "diagnosis", "negation", "patient_statement", "plan", "measurement", "data")

_WORD_RE = re.compile(r"[a-z][a-z'-]*[a-z]|[a-z]")
_BULLET_RE = re.compile(r"^(?:[#*\u2022\u25aa\u25cf\u2013>-]+|\d{1,2}[.)]|[a-z][.)])\s*", re.I)
_HEADER_SPLIT_RE = re.compile(r"^([^:]{1,60}):(?!\d)(.*)$")  # not the colon of a time ("10:22")
_UNIT_RE = re.compile(
    r"\d(?:[\d.,/]*\d)?\s*(?:mg|mcg|µg|ug|g|kg|lbs?|ml|cc|l|meq|mmol|mol|iu|units?|mmhg|cmh2o|bpm|"
    r"breaths|beats|cm|mm|in|°\s*[fc]|deg|%|mg/dl|g/dl|mmol/l|meq/l|u/l|ng/ml|pg/ml|mg/kg|ml/hr|/min|/hr)\b",
    re.I,
)
_ABBREV_VALUE_RE = re.compile(r"\b([A-Z][A-Za-z0-9]{0,5})\s*[:=]?\s*\d")
_AGE_RE = re.compile(r"\b(?:is|was) an? \d{1,3}[- ](?:year|yr|month|week|day)s?[- ]old\b", re.I)
_SUBJECT_CASED_RE = re.compile(r"^(?:[Tt]he\s+)?(?:[Pp]atient|[Pp]t\.?|[Hh]e|[Ss]he|PATIENT)\s+[a-z]")
_SHORT_NEGATION_WORDS = 6
# One-word (or two-word) answers that record a negative or normal finding (general clinical usage).
_ANSWERS = frozenset([
    "none", "negative", "denied", "denies", "never", "noncontributory", "non-contributory", "non contributory",
    "unremarkable", "normal", "nil", "wnl", "nkda", "nka", "nkma", "deferred", "declined", "not applicable",
    "n a", "as above", "see above", "see hpi", "reviewed", "unchanged", "no", "resolved",
])
# Orders and plans open with these verbs ("Follow up in one year.", "Continue current dose.").
_PLAN_RE = re.compile(
    r"^(?:follow[- ]?up|f/u|return|rtc|continue|start|stop|discontinue|hold|resume|increase|decrease|titrate|"
    r"recheck|repeat|refer|referral|obtain|check|monitor|advised?|counsel(?:l?ed)?|encouraged?|recommend(?:ed)?|"
    r"take|apply|avoid|will)\b",
    re.I,
)
# A line that is only a date, time or number (digits and punctuation) is data, never template.
_DATA_RE = re.compile(r"^[\d\s/:.,+-]*\d[\d\s/:.,+-]*(?:[ap]\.?m\.?)?$", re.I)
# Vital-sign labels as charted ("Temp 98.6", "SpO2 97%", "Wt 70 kg"), beside the abbreviations list.
_VITAL_LABELS = frozenset("temp t tmax pulse p resp r rr sat spo2 o2sat wt ht bmi hr bp sbp dbp map gcs pain".split())
_EXTRA_NEGATIONS = ("denies", "denied", "denying", "never")


def _data_lines(name: str) -> list[str]:
    text = (resources.files("clinitune.curate") / "data" / name).read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def normalize_header(text: str) -> str:
    """Lower case, '&' as 'and', punctuation other than '/' dropped, spaces collapsed."""
    text = text.lower().replace("&", " and ")
    text = re.sub(r"[^a-z0-9/ ]+", " ", text)
    return " ".join(text.split())


def _icd_service_chapter(code: str) -> bool:
    """Z00-Z13, Z40-Z53, Z69-Z76: encounters for examinations, procedures and health services."""
    if code[:1] != "Z" or not code[1:3].isdigit():
        return False
    n = int(code[1:3])
    return n <= 13 or 40 <= n <= 53 or 69 <= n <= 76


# ICD-10-CM's coding qualifiers: the 7th-character episode words, laterality and "other/unspecified".
_ICD_QUALIFIERS = frozenset(
    "unspecified specified other initial subsequent sequela encounter left right bilateral unilateral "
    "site sites part parts type level region classified elsewhere routine delayed healing including "
    "involving affecting following".split()
)
# Ordinary words that ICD titles use often enough to pass the rules below but that make up
# administrative text as much as clinical text ("Alcohol use", "Abnormal results", "Maternal care").
_ICD_ORDINARY = frozenset("use known number results individual emergency system care patient portal speech contact".split())
_ICD_HEAD_SPLIT_RE = re.compile(
    r",| of | in | with | without | due | to | and | or | for | by | following | complicating | affecting | on | at | from | as "
)
_RARE_TITLES = 5  # an English word in fewer A-T titles is incidental there ("Page kidney")
_COMMON_TITLES = 100  # an English word in more A-T titles is a body part or finding ("knee", "skin")


@dataclass(frozen=True)
class IcdTerms:
    """What the ICD-10-CM titles say about words (see :func:`_icd_terms`)."""

    diagnoses: frozenset[str]  # words that name diagnoses, findings or anatomy
    set_aside: frozenset[str]  # words judged not clinical on purpose
    heads: frozenset[str]  # heads of diagnoses ("murmur" of "Cardiac murmur")
    stop_words: frozenset[str]  # spaCy's English stop words


def _icd_terms(english: frozenset[str]) -> IcdTerms:
    """Words of CMS ICD-10-CM titles that name diagnoses, findings or anatomy (module docstring),
    and the words set aside on purpose: the qualifiers, the ordinary words and the containers
    (nouns that head only "Abnormal <noun> of/on/in ..." titles: "findings", "results").

    Every word of the titles of chapters A-T (diseases, symptoms, injuries), less spaCy's English
    stop words, the coding qualifiers and the ordinary words above. A common English word (the
    SCOWL list in ``phi/data``) is kept only where it is clearly clinical: the head of a diagnosis
    (the last word of a title's leading phrase in chapters A-N, Q or R: "Cardiac *murmur*", "*Rash*
    and other nonspecific skin eruption"), or a word of at least 100 A-T titles ("knee", "skin"),
    or else a word of at least 5 A-T titles that the ICD's non-disease chapters never use (external
    causes V-Y: places, vehicles, activities; and the health-services codes Z00-Z13, Z40-Z53,
    Z69-Z76: "encounter", "examination", "hospital").
    """
    from spacy.lang.en.stop_words import STOP_WORDS

    from clinitune.terminology.icd10 import load_icd10_table

    counts: dict[str, int] = {}
    heads: set[str] = set()
    containers: set[str] = set()
    everyday: set[str] = set()
    for entry in load_icd10_table():
        name = re.sub(r"\(.*?\)|\[.*?\]", " ", entry.long_name.lower())
        found = _WORD_RE.findall(name)
        chapter = entry.code[:1]
        if chapter in "VWXY" or _icd_service_chapter(entry.code):
            everyday.update(found)
        elif chapter not in "UZ":
            for w in set(found):
                counts[w] = counts.get(w, 0) + 1
            parts = _ICD_HEAD_SPLIT_RE.split(f" {name} ", maxsplit=1)
            lead = _WORD_RE.findall(parts[0])
            # In "Abnormal results of function studies", "Abnormal findings on imaging of lung" the
            # diagnosis is the abnormality of what follows; the noun is a container that heads
            # nothing by itself (unlike "Abnormal sputum", a whole title).
            container = "abnormal" in lead[:-1] and len(parts) > 1 and _WORD_RE.search(parts[1])
            if lead and chapter not in "OPST":
                (containers if container else heads).add(lead[-1])

    def clinical(w: str, n: int) -> bool:
        if len(w) < 3 or w in STOP_WORDS or w in _ICD_QUALIFIERS or w in _ICD_ORDINARY:
            return False
        if w not in english or w in heads or n >= _COMMON_TITLES:
            return True
        return n >= _RARE_TITLES and w not in everyday

    set_aside = (containers - heads) | _ICD_QUALIFIERS | _ICD_ORDINARY
    diagnoses = frozenset(w for w, n in counts.items() if clinical(w, n))
    return IcdTerms(diagnoses, frozenset(set_aside), frozenset(heads & diagnoses), frozenset(STOP_WORDS))


def _english_words() -> frozenset[str]:
    path = resources.files("clinitune.phi") / "data" / "english_words.txt.gz"
    with gzip.open(str(path), "rt", encoding="utf-8") as f:
        return frozenset(w.strip() for w in f if w.strip())


def _abbreviations() -> frozenset[str]:
    """Vitals, labs, devices and imaging abbreviations of the project's clinical-terms list."""
    text = (resources.files("clinitune.phi") / "data" / "clinical_terms.txt").read_text(encoding="utf-8")
    keep, out = False, set()
    for line in text.splitlines():
        if line.startswith("# ---"):
            keep = any(k in line for k in ("vitals", "devices", "imaging"))
            continue
        if keep and not line.startswith("#"):
            out.update(w for w in line.split() if w.isascii())
    return frozenset(out)


@dataclass(frozen=True)
class ClinicalVocabulary:
    sections: frozenset[str]
    negations: tuple[str, ...]
    drugs: frozenset[str]
    diagnoses: frozenset[str]
    abbreviations: frozenset[str]
    section_words: frozenset[str]
    section_heads: frozenset[str]
    common_words: frozenset[str]  # ICD words that are also common English words
    set_aside: frozenset[str] = frozenset()  # ICD words judged not clinical on purpose (see _icd_terms)
    diagnosis_heads: frozenset[str] = frozenset()  # heads of ICD diagnoses (see _icd_terms)
    stop_words: frozenset[str] = frozenset()  # spaCy's English stop words

    @classmethod
    def build(cls) -> "ClinicalVocabulary":
        english = _english_words()
        sections = frozenset(normalize_header(s) for s in _data_lines("section_headers.txt"))
        cues = {c.lower() for c in _data_lines("negation_cues.txt")} | set(_EXTRA_NEGATIONS)
        # Generic connectives that open ordinary sentences as often as findings.
        cues -= {"not", "any other", "rather than", "as well as any", "decline", "resolved", "test for", "checked for", "evaluate for"}
        negations = tuple(sorted(cues, key=len, reverse=True))
        words = frozenset(w for name in sections for w in name.replace("/", " ").split())
        heads = frozenset(name.replace("/", " ").split()[-1] for name in sections)
        icd = _icd_terms(english)
        return cls(sections, negations, drug_names(english), icd.diagnoses, _abbreviations(), words, heads,
                   icd.diagnoses & english, icd.set_aside, icd.heads, icd.stop_words)

    # ------------------------------------------------------------------------------------------

    def is_section(self, text: str) -> bool:
        """A section name of the list, or one composed of its words ending in a section head word
        ("Family and Social History", "HISTORY OF PRESENT ILLNESS/REVIEW OF SYSTEMS")."""
        norm = normalize_header(text)
        if not norm:
            return False
        if norm in self.sections:
            return True
        words = norm.replace("/", " ").split()
        return (
            len(words) <= 8 and words[-1] in self.section_heads
            and all(w in self.section_words or w in ("and", "of", "the") for w in words)
        )

    def _diagnosis_word(self, w: str) -> str | None:
        """``w`` or its singular when it is a diagnosis word. A word set aside on purpose
        ("findings", "results") stays so: its singular is not looked up."""
        if w in self.diagnoses:
            return w
        if w in self.set_aside:
            return None
        if w.endswith("s") and w[:-1] in self.diagnoses:  # "lungs"
            return w[:-1]
        if w.endswith("ies") and w[:-3] + "y" in self.diagnoses:  # "allergies"
            return w[:-3] + "y"
        return None

    def _term(self, words: list[str], label: list[str] | None = None, names: frozenset[str] = frozenset()) -> str | None:
        """``drug``, or ``diagnosis`` when the ICD words are clear evidence: a medical word that is
        not also a common English word ("hypertension" is common, "dyspnea" is not), or one in a
        short line ("Hypertension", "Abdomen soft"), or common ICD words that are not part of a
        proper name (``names``: "Copper Canyon", "Summit Ridge Regional Health"; a diagnosis head
        stays one, "Graves Disease"): two different ones ("chest pain"), one opening the line
        ("Lungs clear to auscultation") or in its label ("Neck: supple"). One common word in a
        sentence ("...return the originals by mail") is not evidence."""
        for w in words:
            if w in self.drugs:
                return "drug"
        hits = [self._diagnosis_word(w) for w in words]
        found = {h for h in hits if h}
        if not found:
            return None
        if found - self.common_words:
            return "diagnosis"
        if len(words) <= 3:
            return "diagnosis"
        # A common word inside a proper name is the name's, unless it heads a diagnosis.
        hits = [h if h and (w not in names or h in self.diagnosis_heads) else None for w, h in zip(words, hits)]
        found = {h for h in hits if h}
        if not found:
            return None
        if hits[0]:
            return "diagnosis"
        if label and any(self._diagnosis_word(w) for w in label if w not in names):
            return "diagnosis"
        return "diagnosis" if len(found) >= 2 else None

    def _proper_names(self, body: str) -> frozenset[str]:
        """Words of the proper names in a line: runs of two or more Titlecase words (nothing but
        spaces between them) holding a word that no ICD title, stop-word or qualifier list has
        ("Copper Canyon", "Summit Ridge Regional Health"); not "Chest Pain" or "Type 2 Diabetes
        Mellitus", whose words are all the ICD's, not a label ("Oxygen Saturation:") and not
        capitals ("CODE STATUS", read as a header)."""
        out: set[str] = set()
        run: list[str] = []

        def close() -> None:
            if len(run) >= 2 and any(self._diagnosis_word(w) is None and w not in self.stop_words and w not in _ICD_QUALIFIERS
                                     for w in run):
                out.update(run)
            run.clear()

        for tok in body.split():
            word = tok.strip("()[]\"'“”‘’.,;:|!?")
            if not word or not word[0].isupper() or (len(word) > 1 and word.isupper()) or not _WORD_RE.fullmatch(word.lower()):
                close()
                continue
            run.append(word.lower())
            if tok.endswith(":"):  # a label ("Oxygen Saturation:", "Marital Status:") names no place
                run.clear()
            elif tok != word and tok[-1:] in ".,;|!?)]":
                close()
        close()
        return frozenset(out)

    def evidence(self, line: str) -> str | None:
        """The first kind of clinical content in ``line`` (see the module docstring), or None."""
        body = _BULLET_RE.sub("", line.strip(), count=1).strip()
        if not body:
            return None
        m = _HEADER_SPLIT_RE.match(body)
        head, rest = (m.group(1), m.group(2).strip()) if m else (body, "")
        if self.is_section(head) or (not m and self.is_section(body.rstrip(":"))):
            return "section_header"
        clause = rest if m else body
        if self._negated(clause) or (m and self._negated(body)) or self._negated_answer(clause):
            return "negation"
        if _SUBJECT_CASED_RE.match(clause) or _AGE_RE.search(clause):
            return "patient_statement"
        if _PLAN_RE.match(clause):
            return "plan"
        term = self._term(_WORD_RE.findall(body.lower()), _WORD_RE.findall(head.lower()) if m else None,
                          self._proper_names(clause))
        if term:
            return term
        if _UNIT_RE.search(body):
            return "measurement"
        for abbr in _ABBREV_VALUE_RE.findall(body):
            if abbr.lower() in self.abbreviations or abbr.lower() in _VITAL_LABELS:
                return "measurement"
        if _DATA_RE.match(body):
            return "data"
        return None

    def _negated_answer(self, value: str) -> bool:
        """A negative or normal answer alone, as a line or a label's value ("Noncontributory.",
        "Tobacco use: never", "Alcohol: denies", "Drains: none", "Exam: WNL")."""
        low = " ".join(_WORD_RE.findall(value.lower()))
        return bool(low) and (low in self.negations or low in _ANSWERS)

    def _negated(self, clause: str) -> bool:
        low = " ".join(_WORD_RE.findall(clause.lower()))
        if not low:
            return False
        for cue in self.negations:
            if low == cue or low.startswith(cue + " "):
                rest = low[len(cue):].split()
                return 0 < len(rest) < _SHORT_NEGATION_WORDS or self._term(rest) is not None
        return False


@lru_cache(maxsize=1)
def vocabulary() -> ClinicalVocabulary:
    """The process-wide vocabulary (built on first use)."""
    return ClinicalVocabulary.build()


def clinical_evidence(line: str) -> str | None:
    """The kind of clinical content in one line of a note, or None (see the module docstring)."""
    return vocabulary().evidence(line)
