"""Hallucinated ICD-10 codes: codes in an answer that the knowledge base and the note do not support.

Definition (``icd10_coding``). A predicted code is

* **invalid** when it is not a billable code of the CMS ICD-10-CM table
  (``clinitune.terminology.icd10.load_icd10_table``, the knowledge base), for example ``E11`` or ``Z99.99``;
* **unsupported** when it is a valid code but the note gives no evidence for it: neither the code
  itself nor any surface form of its diagnosis (CMS long name, short name, the trimmed clinician
  form, a common abbreviation: ``clinitune.terminology.icd10.mention_forms``) occurs in the note text
  (case-insensitive, whitespace-normalised);
* **supported** otherwise.

``hallucination.rate`` = (invalid + unsupported) / predicted codes;
``hallucination.answer_rate`` = answers with at least one invalid or unsupported code / answers that
name a code. Both are **undefined** (None, shown as n/a with the reason) when no answer names a
code: a model that abstains has nothing to judge, and is not counted as never hallucinating. The
abstention rate (answers naming no code / answers) is reported beside them.
The same check applied to the *reference* codes gives ``gold_support_rate``, a sanity figure for
the checker itself (close to 1.0 when notes name their diagnoses, lower when de-identification
or note truncation removed the evidence).
"""

from __future__ import annotations

import re
from functools import lru_cache

SUPPORTED, INVALID, UNSUPPORTED = "supported", "invalid", "unsupported"


def _norm(text: str) -> str:
    return " ".join(str(text).lower().split())


@lru_cache(maxsize=8192)
def _forms(code: str) -> tuple[str, ...] | None:
    from clinitune.terminology.icd10 import lookup, mention_forms

    entry = lookup(code)
    if entry is None:
        return None
    return tuple(_norm(f) for f in mention_forms(entry) if len(f.strip()) >= 2)


def _mentions(text_norm: str, form: str) -> bool:
    if len(form) <= 4:  # short abbreviations (HTN, COPD): whole words only
        return re.search(rf"(?<!\w){re.escape(form)}(?!\w)", text_norm) is not None
    return form in text_norm


def code_support(code: str, note_text: str) -> str:
    """``supported``, ``invalid`` or ``unsupported`` for one predicted code against one note."""
    forms = _forms(code)
    if forms is None:
        return INVALID
    text = _norm(note_text)
    if _mentions(text, code.lower()) or _mentions(text, code.lower().replace(".", "")):
        return SUPPORTED
    return SUPPORTED if any(_mentions(text, f) for f in forms) else UNSUPPORTED


def hallucination_stats(rows: list[tuple[list[str], str]]) -> dict:
    """Counts and rates over (predicted codes, note text) pairs; rates are None when nothing was predicted."""
    predicted = invalid = unsupported = flagged = answered = 0
    for codes, text in rows:
        bad = 0
        answered += int(bool(codes))
        for code in codes:
            verdict = code_support(code, text)
            predicted += 1
            if verdict == INVALID:
                invalid += 1
                bad += 1
            elif verdict == UNSUPPORTED:
                unsupported += 1
                bad += 1
        flagged += int(bad > 0)
    n = len(rows)
    return {
        "answers": n,
        "answers_with_codes": answered,
        "abstention_rate": (n - answered) / n if n else None,
        "predicted_codes": predicted,
        "invalid_codes": invalid,
        "unsupported_codes": unsupported,
        "rate": (invalid + unsupported) / predicted if predicted else None,
        "answer_rate": flagged / answered if answered else None,
        "reason": None if predicted else (f"n/a: none of the {n} answers names a code (the model abstained), so there is "
                                          "nothing to judge" if n else "n/a: no answers"),
    }


def gold_support_rate(rows: list[tuple[list[str], str]]) -> float | None:
    """Fraction of reference codes the checker finds supported by their note (None without codes)."""
    total = ok = 0
    for codes, text in rows:
        for code in codes:
            total += 1
            ok += int(code_support(code, text) == SUPPORTED)
    return ok / total if total else None
