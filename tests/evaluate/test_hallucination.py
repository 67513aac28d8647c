"""Hallucinated codes: invalid codes, valid but unsupported codes, supported codes."""

from __future__ import annotations

from clinitune.evaluate.hallucination import (INVALID, SUPPORTED, UNSUPPORTED, code_support, gold_support_rate,
                                              hallucination_stats)

NOTE = "72 yo male with essential hypertension and COPD, on metformin for type 2 diabetes mellitus without complications."


def test_code_support_verdicts():
    assert code_support("I10", NOTE) == SUPPORTED  # long name
    assert code_support("J44.9", NOTE) == SUPPORTED  # abbreviation
    assert code_support("E11.9", NOTE) == SUPPORTED
    assert code_support("J18.9", NOTE) == UNSUPPORTED  # pneumonia is not in the note
    assert code_support("Z99.99", NOTE) == INVALID  # not a billable code
    assert code_support("E11", NOTE) == INVALID  # category, not billable
    assert code_support("J18.9", "Dx code J18.9 per ED.") == SUPPORTED  # the code itself is written


def test_rates():
    stats = hallucination_stats([(["I10", "J18.9"], NOTE), (["E11.9"], NOTE), ([], NOTE)])
    assert stats["predicted_codes"] == 3 and stats["unsupported_codes"] == 1 and stats["invalid_codes"] == 0
    assert stats["rate"] == 1 / 3 and stats["answer_rate"] == 1 / 2  # of the answers that name a code
    assert stats["abstention_rate"] == 1 / 3 and stats["reason"] is None
    silent = hallucination_stats([([], NOTE), ([], NOTE)])  # a model that abstains is not a model that never hallucinates
    assert silent["rate"] is None and silent["answer_rate"] is None and silent["abstention_rate"] == 1.0
    assert silent["reason"].startswith("n/a: none of the 2 answers names a code")
    assert gold_support_rate([(["I10", "J44.9"], NOTE)]) == 1.0
    assert gold_support_rate([([], NOTE)]) is None


def test_synthetic_notes_name_their_gold_codes():
    """The checker agrees with the generator: a synthetic note supports its own labels."""
    from clinitune.synth.generate import iter_notes

    rows = [(n["icd10"], n["text"]) for n in iter_notes(30, seed=5) if n.get("icd10")]
    assert gold_support_rate(rows) >= 0.95
