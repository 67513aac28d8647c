"""Task metrics: codes, ROUGE-L, perplexity, and the metric catalog."""

from __future__ import annotations

import math

import pytest

from clinitune.evaluate.metrics import code_scores, metric_info, perplexity, rouge_l, text_exact


def test_code_scores_micro_average_and_exact_match():
    pairs = [({"I10", "E11.9"}, {"I10", "E11.9"}),  # exact
             ({"I10"}, {"I10", "J44.9"}),  # one missed
             ({"K21.9", "Z99.99"}, {"K21.9"})]  # one extra
    s = code_scores(pairs)
    assert s["task.exact_match"] == pytest.approx(1 / 3)
    assert s["task.code_precision"] == pytest.approx(4 / 5)
    assert s["task.code_recall"] == pytest.approx(4 / 5)
    assert s["task.code_f1"] == pytest.approx(0.8)


def test_code_scores_empty_prediction_scores_zero():
    s = code_scores([(set(), {"I10"})])
    assert s["task.code_f1"] == 0.0 and s["task.code_precision"] == 0.0


def test_rouge_l():
    assert rouge_l("the patient has pneumonia", "the patient has pneumonia") == 1.0
    assert rouge_l("", "anything") == 0.0
    # LCS "patient pneumonia" (2) of 3 and 4 words -> P=2/3 R=2/4
    assert rouge_l("patient with pneumonia", "the patient has pneumonia") == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert text_exact("Paris.", "paris")


def test_perplexity_and_catalog():
    assert perplexity(0.0) == 1.0
    assert perplexity(None) is None and perplexity(math.nan) is None
    assert metric_info("task.loss").direction == "lower"
    assert metric_info("probes.arithmetic").direction == "higher"
    assert metric_info("task.f2") is None
