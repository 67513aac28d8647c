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


def test_a_text_task_report_shows_no_code_arms_table():
    """A documentation run has base and fine-tuned arms but no coding column: no empty table of dashes."""
    from clinitune.evaluate.report import arms_html, arms_rows, arms_table

    arm = {"label": "base", "code_f1": None, "invalid_code_rate": None, "hallucination_rate": None,
           "retrieval_recall_at_4": None, "new_knowledge_code_f1": None, "rouge_l": 0.05}
    report = {"arms": {"base": arm, "finetuned": {**arm, "label": "fine-tuned", "rouge_l": 0.22}}, "data": {"examples": 3}}
    assert arms_rows(report) == [] and arms_table(report) is None and arms_html(report) == ""
    report["arms"]["finetuned"]["code_f1"] = 0.5
    assert [r[0] for r in arms_rows(report)] == ["base", "fine-tuned"]
