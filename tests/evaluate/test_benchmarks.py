"""Knowledge benchmarks: reading (with quarantine), lm-eval-style prompts, log-likelihood scoring,
intervals, the per-model cache, the report section and the gate's knowledge rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clinitune.evaluate.benchmarks import (BenchmarkFile, BenchmarksConfig, bootstrap_ci, choose, continuations,
                                           full_context, load_benchmark, paired_ci, read_items, requests)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "medical-mcq"

QUESTIONS = [
    {"realidx": "q1", "question": "Which organ pumps blood?", "options": {"A": "heart", "B": "liver", "C": "skin"},
     "answer_idx": "A", "subject": "anatomy"},
    {"realidx": "q2", "question": "Insulin lowers blood glucose. True or false?", "options": {"A": "true", "B": "false"},
     "answer_idx": "A", "subject": "physiology"},
    {"realidx": "q3", "question": "Which vitamin is made in the skin?", "options": {"A": "vitamin C", "B": "vitamin D"},
     "answer_idx": "B", "subject": "physiology"},
    {"realidx": "q4", "question": "Aspirin inhibits which enzyme?", "options": {"A": "cyclooxygenase", "B": "lipase", "C": "amylase",
                                                                               "D": "trypsin"}, "answer_idx": "A", "subject": "pharmacology"},
]


def write_jsonl(path: Path, rows: list, extra_lines: list[str] = ()) -> Path:
    lines = [json.dumps(r) for r in rows] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture()
def bench_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "mini.jsonl", QUESTIONS)


def test_malformed_lines_are_quarantined_with_their_line_number_and_the_rest_scored(tmp_path):
    bad = ['{"realidx": "x", "question": "broken', '[1, 2]',
           json.dumps({"realidx": "y", "question": "", "options": {"A": "a", "B": "b"}, "answer_idx": "A"}),
           json.dumps({"realidx": "z", "question": "q?", "options": {"A": "a", "B": "b"}, "answer_idx": "E"}),
           json.dumps({"realidx": "w", "question": "q?", "options": {"A": "only"}, "answer_idx": "A"}),
           json.dumps(QUESTIONS[0])]  # a duplicate id
    path = write_jsonl(tmp_path / "bad.jsonl", QUESTIONS, bad)
    items, quarantine, lines = read_items(path)
    assert [i.item_id for i in items] == ["q1", "q2", "q3", "q4"] and lines == 10
    assert [q["line"] for q in quarantine] == [5, 6, 7, 8, 9, 10]
    reasons = " ".join(q["reason"] for q in quarantine)
    for part in ("invalid JSON", "not a JSON object", "'question'", "'answer_idx'", "at least two options", "duplicate"):
        assert part in reasons
    assert "broken" not in reasons  # no question text in a reason
    b = load_benchmark(BenchmarkFile(name="bad", path=str(path)))
    assert len(b.items) == 4 and len(b.quarantine) == 6


def test_missing_file_is_a_user_error_naming_the_field(tmp_path):
    from clinitune.errors import UserError

    with pytest.raises(UserError, match=r"benchmarks.files\[nope\].path"):
        load_benchmark(BenchmarkFile(name="nope", path=str(tmp_path / "missing.jsonl")))


def test_prompts_follow_lm_eval_context_and_continuation_split(bench_file):
    b = load_benchmark(BenchmarkFile(name="mini", path=str(bench_file)))
    item = b.items[0]
    ctx = full_context(b, item)
    assert ctx == "Question: Which organ pumps blood?\nAnswer:" and not ctx.endswith(" ")
    assert continuations(item, "cloze") == [" heart", " liver", " skin"]
    assert continuations(item, "letters") == [" A", " B", " C"]
    letters = load_benchmark(BenchmarkFile(name="mini", path=str(bench_file), template="letters"))
    assert full_context(letters, item).endswith("\nA. heart\nB. liver\nC. skin\nAnswer:")
    reqs = requests(b)
    assert len(reqs) == 3 + 2 + 2 + 4 and reqs[0]["request_id"] == "mini/q1/0"


def test_few_shot_examples_come_only_from_the_dev_file_never_from_scored_items(bench_file, tmp_path):
    dev = write_jsonl(tmp_path / "dev.jsonl", [
        {"realidx": "d1", "question": "Which organ filters urine?", "options": {"A": "kidney", "B": "lung"}, "answer_idx": "A"},
        {"realidx": "d2", "question": QUESTIONS[1]["question"], "options": {"A": "true", "B": "false"}, "answer_idx": "A"},
    ])
    spec = BenchmarkFile(name="mini", path=str(bench_file), few_shot_path=str(dev))
    assert load_benchmark(spec).few_shot == []  # zero-shot by default
    b = load_benchmark(spec, few_shot=2)
    assert [e.item_id for e in b.few_shot] == ["d1"]  # d2 repeats a scored question
    ctx = full_context(b, b.items[0])
    assert ctx == "Question: Which organ filters urine?\nAnswer: kidney\n\nQuestion: Which organ pumps blood?\nAnswer:"
    with pytest.raises(Exception, match="few_shot_path"):
        load_benchmark(BenchmarkFile(name="x", path=str(bench_file)), few_shot=1)


def test_sample_is_a_fixed_subset():
    import tempfile

    rows = [dict(QUESTIONS[0], realidx=f"id{i}") for i in range(50)]
    with tempfile.TemporaryDirectory() as d:
        p = write_jsonl(Path(d) / "many.jsonl", rows)
        a = load_benchmark(BenchmarkFile(name="m", path=str(p)), sample=10, seed=1)
        b = load_benchmark(BenchmarkFile(name="m", path=str(p)), sample=10, seed=1)
        c = load_benchmark(BenchmarkFile(name="m", path=str(p)), sample=10, seed=2)
    assert [i.item_id for i in a.items] == [i.item_id for i in b.items] and len(a.items) == 10
    assert [i.item_id for i in a.items] != [i.item_id for i in c.items]


def test_choose_intervals_and_paired_difference():
    assert choose([-3.0, -1.0, -1.0]) == 1  # the first of ties, as argmax
    assert choose([-4.0, -3.0], [8, 2]) == 0  # per byte: -0.5 beats -1.5
    lo, hi = bootstrap_ci([1] * 30 + [0] * 70, resamples=2000, confidence=0.95, seed=0)
    assert 0.19 < lo < 0.3 < hi < 0.41
    d, lo, hi = paired_ci([1, 0, 1, 1], [1, 0, 1, 1], resamples=500, confidence=0.95, seed=0)
    assert d == lo == hi == 0.0
    d, lo, hi = paired_ci([0] * 40, [1] * 40, resamples=500, confidence=0.95, seed=0)
    assert d == lo == hi == -1.0


def test_config_rejects_duplicate_names():
    with pytest.raises(Exception, match="unique"):
        BenchmarksConfig(files=[{"name": "a", "path": "x"}, {"name": "a", "path": "y"}])


# --- scoring with a real (tiny) model ------------------------------------------------------------


def test_token_logprobs_equal_a_plain_full_logits_computation(tiny_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from clinitune.models.loglik import encode_pair, token_logprobs

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    pairs = [("Question: Which organ pumps blood?\nAnswer:", " heart"), ("Patient is a 67 year old with", " hypertension"),
             ("Chief complaint:", " chest pain. History of present illness")]
    enc = [encode_pair(tok, c, x) for c, x in pairs]
    for (c, x), (ci, xi) in zip(pairs, enc):
        assert ci + xi == tok(c + x, add_special_tokens=False)["input_ids"]  # the whole string, split after the context
    seqs = [ci + xi for ci, xi in enc]
    got = token_logprobs(model, seqs, [len(ci) for ci, _ in enc], top_k=3, pad_id=tok.pad_token_id, max_batch_tokens=40)
    for seq, (ci, xi), s in zip(seqs, enc, got):
        with torch.no_grad():
            lp = torch.log_softmax(model(torch.tensor([seq])).logits[0].float(), -1)
        want = [lp[p - 1, seq[p]].item() for p in range(len(ci), len(seq))]
        assert s.start == len(ci) and s.logprobs == pytest.approx(want, abs=1e-4)
        assert s.greedy == [int(lp[p - 1].argmax()) == seq[p] for p in range(len(ci), len(seq))]
        assert [t[0][1] for t in s.top] == pytest.approx([lp[p - 1].max().item() for p in range(len(ci), len(seq))], abs=1e-4)


def test_run_knowledge_scores_caches_and_reports(tiny_model, bench_file, tmp_path):
    from clinitune.artifacts.model import ModelSpec
    from clinitune.evaluate.knowledge import knowledge_html, run_knowledge
    from clinitune.models.loglik import score_local

    calls = []

    def scorer(spec, reqs):
        calls.append(len(reqs))
        return score_local(spec, reqs)

    spec = ModelSpec.plain(tiny_model, name="tiny")
    cfg = BenchmarksConfig(enabled=True, files=[BenchmarkFile(name="mini", path=str(bench_file))], bootstrap=200)
    res = run_knowledge(cfg, {"candidate": spec, "baseline": spec}, scorer=scorer, cache_root=tmp_path / "cache")
    assert calls == [11]  # the baseline is the same model: every score came from the cache
    e = res.section["benchmarks"]["mini"]
    assert e["n"] == 4 and e["quarantined"] == 0 and e["delta"]["accuracy"] == 0.0
    c = e["candidate"]
    assert c["ci_low"] <= c["accuracy"] <= c["ci_high"] and set(c["subjects"]) == {"anatomy", "physiology", "pharmacology"}
    assert res.metrics["candidate"]["knowledge.mini"] == c["accuracy"] == res.metrics["baseline"]["knowledge.mini"]
    # the same accuracy as scoring each option by hand
    scored = score_local(spec, __import__("pandas").DataFrame(requests(load_benchmark(cfg.files[0]))))
    by = dict(zip(scored["request_id"], scored["logprob"]))
    hand = [choose([by[f"mini/{q['realidx']}/{k}"] for k in range(len(q["options"]))]) == "ABCD".index(q["answer_idx"])
            for q in QUESTIONS]
    assert c["correct"] == sum(hand)
    again = run_knowledge(cfg, {"candidate": spec}, scorer=scorer, cache_root=tmp_path / "cache")
    assert calls == [11] and again.section["timing"]["candidate"]["cached"] == 11
    html = knowledge_html(res.section)
    assert "Medical knowledge benchmarks" in html and "anatomy" in html and QUESTIONS[0]["question"] not in html


def test_knowledge_rule_rejects_a_drop_beyond_margin_and_interval():
    from clinitune.evaluate.gate import GatePolicy, decide

    def report(lo, hi, cand=0.3, base=0.5):
        e = {"n": 100, "candidate": {"accuracy": cand}, "baseline": {"accuracy": base},
             "delta": {"accuracy": cand - base, "ci_low": lo, "ci_high": hi}}
        return {"metrics": {"candidate": {"knowledge.medmcqa": cand}, "baseline": {"knowledge.medmcqa": base}},
                "knowledge": {"benchmarks": {"medmcqa": e}}}

    policy = GatePolicy(min_task_gain=-1, max_fairness_gap=None, on_missing="skip", knowledge={"enabled": True, "max_drop": 0.05})
    bad = decide(report(-0.3, -0.1), policy)
    assert bad.decision == "reject" and any("medmcqa" in r and "beyond" in r for r in bad.reasons)
    ok = decide(report(-0.3, -0.01), policy)  # the interval reaches back within the margin
    assert [c.passed for c in ok.checks if c.name == "knowledge"] == [True]
    strict = GatePolicy(min_task_gain=-1, max_fairness_gap=None, knowledge={"enabled": True})
    missing = decide({"metrics": {"candidate": {}, "baseline": {}}}, strict)
    assert any("knowledge benchmarks were not run" in r for r in missing.reasons)


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared medical-mcq data not present")
def test_shared_benchmark_files_read_without_quarantine():
    for f in BenchmarksConfig().files:
        path = Path(__file__).resolve().parents[2] / f.path
        items, bad, _ = read_items(path, f.subject_field)
        assert items and not bad, f.name
    mmlu, _, _ = read_items(SHARED / "mmlu-test.jsonl")
    assert len({i.subject for i in mmlu}) == 6


def test_evaluation_reports_knowledge_base_vs_candidate_and_gates_it(tiny_artifact, toy_data, bench_file, tmp_path):
    import yaml

    from clinitune.evaluate.config import EvalConfig
    from clinitune.evaluate.runner import run_evaluation

    bad_line = tmp_path / "with-bad.jsonl"
    bad_line.write_text(bench_file.read_text() + "{not json\n")
    policy = tmp_path / "gate.yaml"
    policy.write_text(yaml.safe_dump({"min_task_gain": -1.0, "max_forgetting_regression": 1.0, "max_fairness_gap": 1.0,
                                      "max_phi_extraction_rate": 1.0, "on_missing": "skip",
                                      "knowledge": {"enabled": True, "max_drop": 0.0}}))
    cfg = EvalConfig(candidate=str(tiny_artifact), data=str(toy_data), workdir=str(tmp_path / "work"), gate_policy=str(policy),
                     max_examples=2, loss=False, generation={"max_new_tokens": 4}, probes={"enabled": False},
                     consistency={"enabled": False}, canaries={"enabled": False},
                     benchmarks={"enabled": True, "bootstrap": 200, "generation": True,
                                 "files": [{"name": "mini", "path": str(bad_line)}]})
    rep = run_evaluation(cfg, local=True).report
    k = rep["knowledge"]["benchmarks"]["mini"]
    assert k["n"] == 4 and k["quarantined"] == 1 and k["quarantine"] == [{"line": 5, "reason": k["quarantine"][0]["reason"]}]
    for role in ("candidate", "baseline"):
        assert rep["metrics"][role]["knowledge.mini"] == k[role]["accuracy"]
        assert 0 <= k[role]["generation_accuracy"] <= 1
    assert "knowledge.mini" in rep["metrics"]["delta"]
    checks = [c for c in rep["gate"]["checks"] if c["name"] == "knowledge"]
    assert len(checks) == 1 and checks[0]["metric"] == "knowledge.mini"
    html = (tmp_path / "work" / "eval").rglob("report.html").__next__().read_text()
    assert "Medical knowledge benchmarks" in html
    from clinitune.evaluate.knowledge import knowledge_lines  # what the demo and clinitune evaluate print

    (line,) = knowledge_lines(rep["knowledge"])
    assert line.startswith("knowledge mini (n=4, 95% intervals)") and "1 lines quarantined" in line
    assert f"fine-tuned {k['candidate']['accuracy']:.3f} [" in line and "; delta " in line


@pytest.mark.ray
def test_scoring_on_ray_actors_matches_in_process(ray_session, tiny_artifact, bench_file):
    import pandas as pd

    from clinitune.artifacts.model import resolve_ref
    from clinitune.evaluate.config import ExecutionConfig
    from clinitune.models.loglik import score_local, score_on_ray

    spec = resolve_ref(str(tiny_artifact), field_name="candidate")
    reqs = pd.DataFrame(requests(load_benchmark(BenchmarkFile(name="mini", path=str(bench_file)))))
    here = score_local(spec, reqs)
    there = score_on_ray(spec, reqs, ExecutionConfig(cpus_per_actor=0.5, torch_threads=1), rows_per_batch=4)
    assert list(there["request_id"]) == list(reqs["request_id"])
    assert there["logprob"].tolist() == pytest.approx(here["logprob"].tolist(), abs=1e-4)
