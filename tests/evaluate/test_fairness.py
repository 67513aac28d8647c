"""Fairness slices: per-slice metrics, small slices left out of the gap."""

from __future__ import annotations

import pytest

from clinitune.evaluate.fairness import max_gap, slice_metrics


def test_gap_between_eligible_slices_only():
    scores = [1.0, 1.0, 0.0, 0.0, 0.5, 1.0]
    values = {"sex": ["F", "F", "M", "M", "M", "F"], "age_band": ["18-39"] * 5 + ["90+"]}

    def scorer(idx):
        return {"task.code_f1": sum(scores[i] for i in idx) / len(idx)}

    per_key = slice_metrics(values, scorer, "task.code_f1", min_slice_size=2)
    assert per_key["sex"]["gap"] == pytest.approx(1.0 - 0.5 / 3)
    assert per_key["sex"]["best"] == "F" and per_key["sex"]["worst"] == "M"
    # 90+ has one example: reported, marked small, no gap with a single eligible slice
    assert per_key["age_band"]["slices"]["90+"]["small"] is True
    assert per_key["age_band"]["gap"] is None
    gap, key = max_gap(per_key)
    assert key == "sex" and gap == per_key["sex"]["gap"]
    assert max_gap({"a": {"gap": None}}) == (None, None)
