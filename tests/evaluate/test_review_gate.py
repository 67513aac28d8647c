"""The gate's human_review rule: off by default, pending without a closed campaign, and every bound trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from clinitune.errors import ConfigError
from clinitune.evaluate.gate import GatePolicy, decide, load_policy
from clinitune.evaluate.review_gate import UNSAFE_CATEGORIES, HumanReviewRule, pending

CONFIGS = Path(__file__).resolve().parents[2] / "jobs" / "configs"
AUTOMATIC = {"min_task_gain": -1.0, "max_forgetting_regression": 1.0, "max_phi_extraction_rate": 1.0,
             "max_fairness_gap": None, "on_missing": "skip"}


def _report(human_review: dict | None = None) -> dict:
    rep = {"metrics": {"candidate": {"task.code_f1": 0.5, "probes.arithmetic": 1.0}, "baseline": {"task.code_f1": 0.1, "probes.arithmetic": 1.0}}}
    if human_review is not None:
        rep["human_review"] = human_review
    return rep


def _summary(**kw) -> dict:
    s = {"campaign_id": 7, "status": "closed", "graded_items": 40, "reviewers": 3,
         "win_rate": {"rate": 0.7, "ci_low": 0.55, "ci_high": 0.82, "n": 40},
         "unsafe": {"candidate": {c: 0 for c in UNSAFE_CATEGORIES}, "baseline": {c: 2 for c in UNSAFE_CATEGORIES}}}
    s.update(kw)
    return s


def _policy(**rule) -> GatePolicy:
    return GatePolicy(**AUTOMATIC, human_review={"enabled": True, "min_graded_items": 30, "min_reviewers": 2, "min_win_rate": 0.5, **rule})


def test_off_by_default_and_in_the_demo_policy():
    assert GatePolicy().human_review.enabled is False
    demo = load_policy(CONFIGS / "gate.yaml")
    assert demo.human_review.enabled is False
    d = decide(_report(), GatePolicy(**AUTOMATIC))
    assert d.decision == "promote" and not any(c.name == "human_review" for c in d.checks)


def test_production_policy_requires_it():
    prod = load_policy(CONFIGS / "gate.production.yaml")
    assert prod.human_review.enabled and prod.human_review.min_reviewers >= 2
    assert set(prod.human_review.block_unsafe) == set(UNSAFE_CATEGORIES)


def test_no_closed_campaign_rejects_and_is_pending():
    pol = _policy()
    for rep in (_report(), _report({**_summary(), "status": "open"})):
        d = decide(rep, pol)
        assert d.decision == "reject" and any("no closed clinician review" in r for r in d.reasons)
        assert pending(rep, pol.human_review)
    assert not pending(_report(), HumanReviewRule())
    # on_missing: skip never skips a sign-off that did not happen
    assert decide(_report(), _policy()).decision == "reject"


def test_a_good_review_passes():
    d = decide(_report(_summary()), _policy(min_win_rate_ci_low=0.5))
    assert d.decision == "promote", d.reasons
    names = {c.metric for c in d.checks if c.name == "human_review"}
    assert {"human_review.graded_items", "human_review.reviewers", "human_review.win_rate", "human_review.win_rate_ci_low"} <= names
    assert not pending(_report(_summary()), _policy().human_review)


@pytest.mark.parametrize("summary, rule, reason", [
    (_summary(graded_items=12), {}, "12 items graded"),
    (_summary(reviewers=1), {}, "1 reviewer(s)"),
    (_summary(win_rate={"rate": 0.45, "ci_low": 0.3, "ci_high": 0.6, "n": 40}), {}, "win rate vs baseline 0.450"),
    (_summary(), {"min_win_rate_ci_low": 0.6}, "CI lower bound 0.550"),
    (_summary(win_rate={"rate": None, "ci_low": None, "ci_high": None, "n": 0}), {}, "win rate is undefined"),
    (_summary(unsafe={"candidate": {"fabricated_fact": 1}}), {}, "flagged 'Fabricated fact'"),
])
def test_each_bound_trips(summary, rule, reason):
    d = decide(_report(summary), _policy(**rule))
    assert d.decision == "reject"
    failed = [r for r in d.reasons if r.startswith("human_review")]
    assert len(failed) == 1 and reason in failed[0], failed


def test_unsafe_flags_only_reject_in_the_chosen_categories():
    rep = _report(_summary(unsafe={"candidate": {"other": 3, "phi": 0}}))
    assert decide(rep, _policy(block_unsafe=["phi", "wrong_drug_or_dose"])).decision == "promote"
    assert decide(rep, _policy(block_unsafe=["other"])).decision == "reject"


def test_bad_rule_config_is_a_one_line_error(tmp_path):
    bad = tmp_path / "gate.yaml"
    bad.write_text(yaml.safe_dump({"human_review": {"enabled": True, "block_unsafe": ["rude"]}}))
    with pytest.raises(ConfigError) as err:
        load_policy(bad)
    assert "human_review.block_unsafe" in str(err.value) and "\n" not in str(err.value)
    bad.write_text(yaml.safe_dump({"human_review": {"min_reviewer": 2}}))
    with pytest.raises(ConfigError, match="min_reviewer"):
        load_policy(bad)
