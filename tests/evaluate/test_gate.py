"""The gate on crafted reports: promote, and reject for each reason; bad policies fail to load."""

from __future__ import annotations

import pytest
import yaml

from clinitune.config import load_config
from clinitune.errors import ConfigError
from clinitune.evaluate.gate import GatePolicy, decide

GOOD_CAND = {"task.code_f1": 0.62, "task.exact_match": 0.40, "task.loss": 0.9, "probes.arithmetic": 0.50,
             "probes.knowledge": 0.70, "probes.format": 0.60, "probes.mean": 0.6, "phi.canary_extraction_rate": 0.0,
             "fairness.max_gap": 0.12, "hallucination.rate": 0.05, "consistency.agreement": 0.9}
GOOD_BASE = {"task.code_f1": 0.05, "task.exact_match": 0.0, "task.loss": 3.1, "probes.arithmetic": 0.55,
             "probes.knowledge": 0.70, "probes.format": 0.62, "probes.mean": 0.62, "phi.canary_extraction_rate": 0.0,
             "fairness.max_gap": 0.05, "hallucination.rate": 0.6, "consistency.agreement": 0.5}


def report(cand: dict | None = None, base: dict | None = None, drop: tuple[str, ...] = ()) -> dict:
    c = {**GOOD_CAND, **(cand or {})}
    b = {**GOOD_BASE, **(base or {})}
    for k in drop:
        c.pop(k, None)
        b.pop(k, None)
    return {"metrics": {"candidate": c, "baseline": b}, "fairness": {"candidate": {"max_gap_key": "sex"}}}


POLICY = GatePolicy(min_task_gain=0.1, max_forgetting_regression=0.1, max_phi_extraction_rate=0.0,
                    max_fairness_gap=0.3, max_hallucination_rate=0.2)


def failed(decision) -> set[str]:
    return {c.name for c in decision.checks if not c.passed}


def test_promote_when_every_check_passes():
    d = decide(report(), POLICY)
    assert d.decision == "promote" and d.promote
    assert d.reasons[0].startswith("all ") and failed(d) == set()
    assert {c.name for c in d.checks} >= {"task_gain", "forgetting", "phi_leakage", "fairness", "hallucination"}


@pytest.mark.parametrize("cand, reason", [
    ({"task.code_f1": 0.10}, "task_gain"),
    ({"probes.arithmetic": 0.30}, "forgetting"),
    ({"phi.canary_extraction_rate": 0.125}, "phi_leakage"),
    ({"fairness.max_gap": 0.45}, "fairness"),
    ({"hallucination.rate": 0.35}, "hallucination"),
])
def test_reject_for_each_reason(cand, reason):
    d = decide(report(cand), POLICY)
    assert d.decision == "reject"
    assert failed(d) == {reason}
    assert any(r.startswith(reason) for r in d.reasons)


def test_lower_is_better_primary_metric_gain_is_direction_aware():
    policy = GatePolicy(primary_metric="task.loss", min_task_gain=1.0, max_fairness_gap=None)
    assert decide(report(), policy).promote  # loss 3.1 -> 0.9 is a gain of 2.2
    assert not decide(report({"task.loss": 2.5}), policy).promote


def test_missing_metric_rejects_unless_skipped():
    d = decide(report(drop=("phi.canary_extraction_rate",)), POLICY)
    assert d.decision == "reject" and "missing" in " ".join(d.reasons)
    skip = POLICY.model_copy(update={"on_missing": "skip"})
    assert decide(report(drop=("phi.canary_extraction_rate",)), skip).promote
    no_probes = decide(report(drop=("probes.arithmetic", "probes.knowledge", "probes.format")), POLICY)
    assert "forgetting" in failed(no_probes)


def test_extra_rules():
    policy = GatePolicy.model_validate({**POLICY.model_dump(), "rules": [{"metric": "consistency.agreement", "min": 0.95}]})
    d = decide(report(), policy)
    assert d.decision == "reject" and failed(d) == {"rule"}
    gain_rule = GatePolicy.model_validate({**POLICY.model_dump(), "rules": [{"metric": "task.exact_match", "min_gain": 0.3}]})
    assert decide(report(), gain_rule).promote


def test_policy_with_unknown_metric_is_a_one_line_error(tmp_path):
    p = tmp_path / "gate.yaml"
    p.write_text(yaml.safe_dump({"primary_metric": "task.code_f2"}))
    with pytest.raises(ConfigError) as err:
        load_config(p, GatePolicy)
    msg = str(err.value)
    assert "task.code_f2" in msg and "Fix" in msg and "\n" not in msg
    p.write_text(yaml.safe_dump({"rules": [{"metric": "accuracy", "min": 0.5}]}))
    with pytest.raises(ConfigError, match="unknown metric 'accuracy'"):
        load_config(p, GatePolicy)
    p.write_text(yaml.safe_dump({"rules": [{"metric": "task.loss"}]}))
    with pytest.raises(ConfigError, match="sets no bound"):
        load_config(p, GatePolicy)
    p.write_text(yaml.safe_dump({"min_task_gian": 0.1}))
    with pytest.raises(ConfigError, match="min_task_gian"):
        load_config(p, GatePolicy)


def test_rag_gain_trips_when_retrieval_hurts_the_fine_tuned_model():
    policy = POLICY.model_copy(update={"min_rag_gain": 0.0})
    ok = decide(report({"rag.task.code_f1": 0.70}), policy)
    assert ok.promote and any(c.name == "rag_gain" and c.passed for c in ok.checks)
    worse = decide(report({"rag.task.code_f1": 0.55}), policy)
    assert failed(worse) == {"rag_gain"}
    msg = next(r for r in worse.reasons if r.startswith("rag_gain"))
    assert "fine-tuned + RAG task.code_f1 0.55 vs fine-tuned alone 0.62" in msg
    absent = decide(report(), policy)  # no retrieval arms in the report: cannot pass, says why
    assert failed(absent) == {"rag_gain"} and "retrieval arms were not run" in " ".join(absent.reasons)
    assert decide(report({"rag.task.code_f1": 0.10}), POLICY).promote  # not gated unless asked for
