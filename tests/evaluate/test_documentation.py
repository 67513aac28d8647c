"""Documentation metrics: ROUGE (rouge-score) and clinical facts from the curation floor's vocabularies."""

from __future__ import annotations

import pytest

from clinitune.evaluate.documentation import documentation_scores, facts, rouge_scores


def test_facts_are_medications_problems_allergies_and_negations():
    f = facts("History of hypertension and diabetes. Takes lisinopril daily. No known drug allergies. Denies chest pain or fever.")
    assert {"med:lisinopril", "problem:hypertension", "problem:diabetes", "allergy:none", "neg:fever", "neg:pain"} <= f
    assert "problem:history" not in f  # a section word is structure, not a finding
    assert "neg:hypertension" not in f  # outside the negation's sentence


def test_rouge_is_rouge_score():
    from rouge_score import rouge_scorer

    s = rouge_scores(["the patient denies fever"], ["patient denies any fever"])
    want = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True).score("patient denies any fever",
                                                                                          "the patient denies fever")
    assert s["task.rouge1"] == pytest.approx(want["rouge1"].fmeasure) and s["task.rouge_l"] == pytest.approx(want["rougeL"].fmeasure)


def test_fact_recall_and_hallucination():
    dialogue = "Doctor: Any medicines? Patient: Just metformin for my diabetes. Doctor: Fever? Patient: No."
    ref = "Diabetes on metformin. No fever."
    good = documentation_scores(["Diabetes, takes metformin. Denies fever."], [ref], [dialogue])
    assert good["task.fact_recall"] == 1.0 and good["task.fact_hallucination_rate"] == 0.0
    bad = documentation_scores(["Asthma on albuterol."], [ref], [dialogue])
    assert bad["task.fact_recall"] == 0.0 and bad["task.fact_hallucination_rate"] == 1.0
    assert bad["task.fact_recall.med"] == 0.0 and bad["task.fact_recall.allergy"] is None
