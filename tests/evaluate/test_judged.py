"""Hallucination and consistency mean something when a model abstains: n/a with a reason, the
abstention rate beside them, consistency on code sets with an interval — and gate rules for both,
each tripped here."""

from __future__ import annotations

import pandas as pd
import pytest

from clinitune.evaluate.config import EvalConfig
from clinitune.evaluate.consistency import summarize
from clinitune.evaluate.gate import GatePolicy, decide

SMALL = {"generation": {"max_new_tokens": 6, "batch_size": 8}, "probes": {"enabled": False}, "loss": False,
         "consistency": {"n_examples": 6, "paraphrases": 2, "seeds": [1]}, "max_examples": 6}


def test_consistency_is_judged_on_content_and_says_when_there_is_nothing_to_judge():
    e119, i10 = frozenset({"E11.9"}), frozenset({"I10"})
    s = summarize([(e119, e119), (frozenset({"E11.9", "I10"}), frozenset({"I10", "E11.9"})), (i10, e119), (frozenset(), frozenset())],
                  "greedy")
    assert s["pairs"] == 4 and s["judged"] == 3 and s["both_empty"] == 1 and s["agreed"] == 2
    assert s["agreement"] == pytest.approx(2 / 3) and 0 < s["ci95"][0] < 2 / 3 < s["ci95"][1] < 1 and s["decoding"] == "greedy"
    silent = summarize([(frozenset(), frozenset())] * 5, "greedy")
    assert silent["agreement"] is None and silent["ci95"] is None and "both answers are empty" in silent["reason"]


def test_a_model_that_answers_nothing_gets_na_not_a_perfect_score(toy_data, tmp_path):
    """Scored from answers that name no code: hallucination and consistency are n/a with the reason,
    the abstention rate is 1, and the gate says why it cannot pass on them."""
    from clinitune.evaluate.items import build_eval_set
    from clinitune.evaluate.scoring import score_model

    cfg = EvalConfig(candidate="unused", data=str(toy_data), workdir=str(tmp_path), **SMALL)
    es = build_eval_set(cfg, "icd10_coding", {}, None, [])
    silent = pd.DataFrame({"item_id": es.items["item_id"], "output": "", "nll": None, "target_tokens": 0, "new_tokens": 0})
    sc = score_model(es, silent, 2)
    m = sc["metrics"]
    assert m["hallucination.rate"] is None and m["hallucination.answer_rate"] is None and m["task.abstention_rate"] == 1.0
    assert m["consistency.paraphrase_agreement"] is None and m["consistency.seed_agreement"] is None
    assert sc["details"]["consistency"]["paraphrase"]["pairs"] == 12 and "nothing to judge" in sc["details"]["consistency"]["paraphrase"]["reason"]
    report = {"metrics": {"candidate": m, "baseline": m}, "hallucination": {"candidate": sc["details"]["hallucination"]},
              "consistency": {"candidate": sc["details"]["consistency"]}}
    d = decide(report, GatePolicy(min_task_gain=-1, max_fairness_gap=None, max_hallucination_rate=0.25,
                                  min_paraphrase_agreement=0.6, on_missing="skip"))
    msgs = {c.name: c.message for c in d.checks if not c.passed}
    assert "cannot pass on an undefined rate" in msgs["hallucination"] and "abstention rate 1" in msgs["hallucination"]
    assert "n/a" in msgs["consistency"] and "cannot pass" in msgs["consistency"]
    from clinitune.evaluate.report import judged_lines  # what the demo and the CLI print: n/a and why, never 0 or 1

    lines = judged_lines(report)
    assert any("hallucinated-code rate n/a" in l and "abstention rate 1.000" in l and "nothing to judge" in l for l in lines)
    assert any(l.startswith("fine-tuned: paraphrase consistency n/a") for l in lines)


def _report(rate=0.1, base_rate=0.5, agreement=(30, 32), reason=None):
    from scipy.stats import binomtest

    agreed, n = agreement
    ci = binomtest(agreed, n).proportion_ci(method="wilson") if n else None
    para = {"pairs": n, "judged": n, "agreed": agreed, "agreement": agreed / n if n else None,
            "ci95": [ci.low, ci.high] if ci else None, "reason": reason}
    return {"metrics": {"candidate": {"task.code_f1": 0.6, "hallucination.rate": rate, "task.abstention_rate": 0.0},
                        "baseline": {"task.code_f1": 0.0, "hallucination.rate": base_rate}},
            "hallucination": {"baseline": {"reason": "n/a: none of the 40 answers names a code" if base_rate is None else None}},
            "consistency": {"candidate": {"paraphrase": para}}}


POLICY = GatePolicy(min_task_gain=0.1, max_fairness_gap=None, max_hallucination_rate=0.25, hallucination_not_worse=True,
                    min_paraphrase_agreement=0.6, min_consistency_pairs=24, on_missing="skip")


def _failed(report, policy=POLICY) -> dict[str, str]:
    return {c.name: c.message for c in decide(report, policy).checks if not c.passed}


def test_the_new_rules_pass_a_good_candidate_and_say_what_they_compared():
    d = decide(_report(), POLICY)
    assert d.promote
    msgs = {c.name: c.message for c in d.checks}
    assert msgs["hallucination"] == "hallucination: rate 0.1 of the candidate's predicted codes (<= ceiling 0.25)"
    assert msgs["hallucination_vs_baseline"] == "hallucination_vs_baseline: rate 0.1 vs the baseline's 0.5 (not worse)"
    assert msgs["consistency"].startswith("consistency: paraphrase agreement 0.9375 on 32 pairs (without retrieval; code sets compared; 95% CI 0.")
    # an undefined baseline rate is not compared (and says so)
    d = decide(_report(base_rate=None), POLICY)
    assert d.promote and "not compared: the baseline's rate is n/a" in {c.name: c.message for c in d.checks}["hallucination_vs_baseline"]


@pytest.mark.parametrize("kw, name, words", [
    ({"rate": 0.4}, "hallucination", "> ceiling 0.25"),
    ({"rate": None}, "hallucination", "cannot pass on an undefined rate"),
    ({"rate": 0.2, "base_rate": 0.1}, "hallucination_vs_baseline", "(worse)"),
    ({"agreement": (20, 20)}, "consistency", "only 20 judged pairs (< 24"),
    ({"agreement": (20, 32)}, "consistency", "lower end < floor 0.6"),
    ({"agreement": (0, 0), "reason": "n/a: in all 32 pairs both answers are empty"}, "consistency", "cannot pass"),
])
def test_each_new_gate_reason_trips(kw, name, words):
    failed = _failed(_report(**kw))
    assert set(failed) == {name} and words in failed[name]


def _rag_report(rate=0.1, base_rate=0.3, retrieval=True):
    r = _report(rate=0.6, base_rate=None)  # the model alone hallucinates; what is served is judged
    r["metrics"]["candidate"].update({"rag.hallucination.rate": rate, "rag.task.abstention_rate": 0.0})
    r["metrics"]["baseline"]["rag.hallucination.rate"] = base_rate
    r["consistency"]["retrieval"] = retrieval
    return r


RAG_POLICY = POLICY.model_copy(update={"deployed": "finetuned_rag"})


def test_a_deployment_with_retrieval_is_judged_on_the_retrieval_arm():
    d = decide(_rag_report(), RAG_POLICY)
    msgs = {c.name: c.message for c in d.checks}
    assert d.promote, d.reasons
    assert msgs["hallucination"] == "hallucination: rate 0.1 of the candidate + RAG's predicted codes (<= ceiling 0.25)"
    assert msgs["hallucination_vs_baseline"] == "hallucination_vs_baseline: rate 0.1 vs the baseline + RAG's 0.3 (not worse)"
    assert "with retrieval; code sets compared" in msgs["consistency"]


@pytest.mark.parametrize("kw, name, words", [
    ({"rate": 0.3}, "hallucination", "0.3 of the candidate + RAG's predicted codes (> ceiling 0.25)"),
    ({"rate": None}, "hallucination", "the candidate + RAG's rate is n/a"),
    ({"rate": 0.2, "base_rate": 0.1}, "hallucination_vs_baseline", "vs the baseline + RAG's 0.1 (worse)"),
    ({"retrieval": False}, "consistency", "measured without retrieval, but the deployment serves the fine-tuned model with it"),
])
def test_each_retrieval_arm_reason_trips(kw, name, words):
    failed = _failed(_rag_report(**kw), RAG_POLICY)
    assert set(failed) == {name} and words in failed[name]


def test_retrieval_arm_missing_from_the_report_rejects():
    r = _report()
    r["consistency"]["retrieval"] = True
    failed = _failed(r, RAG_POLICY.model_copy(update={"on_missing": "reject"}))
    assert "rag.hallucination.rate is missing from the report (the retrieval arms were not run" in failed["hallucination"]


def test_shipped_policies_gate_hallucination_and_consistency():
    from pathlib import Path

    from clinitune.evaluate.gate import load_policy

    configs = Path(__file__).resolve().parents[2] / "jobs" / "configs"
    for name in ("gate.yaml", "gate.production.yaml"):
        p = load_policy(configs / name)
        assert p.max_hallucination_rate is not None and p.hallucination_not_worse
        assert p.min_paraphrase_agreement is not None and p.min_consistency_pairs >= 20
