"""End to end: a candidate artifact vs its base on held-out toy notes -> report.json, report.html, gate."""

from __future__ import annotations

import json

import pytest
import yaml

from clinitune.errors import ConfigError, UserError
from clinitune.evaluate.config import EvalConfig
from clinitune.evaluate.report import read_report
from clinitune.evaluate.runner import run_evaluation

SMALL = {"generation": {"max_new_tokens": 6, "batch_size": 8}, "probes": {"max_per_family": 2, "max_new_tokens": 6},
         "consistency": {"n_examples": 3, "seeds": [1]}, "canaries": {"max_new_tokens": 8},
         "fairness": {"min_slice_size": 2}}


@pytest.fixture(scope="module")
def evaluated(tiny_artifact, toy_data, tmp_path_factory):
    from clinitune.evaluate.canaries import plant_canaries

    root = tmp_path_factory.mktemp("eval-run")
    data = root / "data"
    plant_canaries(toy_data, data, n=2, seed=3)
    policy = root / "gate.yaml"
    policy.write_text(yaml.safe_dump({"min_task_gain": 0.0, "max_forgetting_regression": 1.0, "max_fairness_gap": 1.0}))
    cfg = EvalConfig(candidate=str(tiny_artifact), data=str(data), workdir=str(root / "work"), gate_policy=str(policy), **SMALL)
    return run_evaluation(cfg, local=True)


def test_report_has_every_section(evaluated, toy_data):
    rep = evaluated.report
    assert read_report(evaluated.report_path) == json.loads(evaluated.report_path.read_text())
    assert rep["candidate"]["kind"] == "adapter" and rep["baseline"]["name"].startswith("base:")
    assert rep["task"]["name"] == "icd10_coding" and rep["task"]["system_prompt"] == "You are a clinical coding assistant."
    assert rep["data"]["examples"] == 20 and rep["data"]["split"] == "test"
    for who in ("candidate", "baseline"):
        m = rep["metrics"][who]
        for key in ("task.code_f1", "task.exact_match", "task.rouge_l", "task.loss", "task.perplexity", "probes.arithmetic",
                    "probes.knowledge", "probes.format", "phi.canary_extraction_rate", "hallucination.rate",
                    "fairness.max_gap", "consistency.paraphrase_agreement", "consistency.seed_agreement"):
            assert key in m, (who, key)
    # the adapter changes the model: the candidate's held-out loss differs from the base's
    assert rep["metrics"]["delta"]["task.loss"] != 0.0
    assert set(rep["probes"]) == {"arithmetic", "knowledge", "format"}
    assert rep["canaries"]["candidate"]["n"] == 2
    assert set(rep["fairness"]["candidate"]["by_key"]) == {"sex", "age_band", "note_type"}
    assert rep["training"]["history"][-1]["val_loss"] == 2.7
    assert rep["gate"]["decision"] in ("promote", "reject") and rep["gate"]["checks"]
    assert len(rep["examples"]) == 20 and "text" not in rep["examples"][0]


def test_html_is_self_contained_and_has_no_note_text(evaluated, toy_data):
    import pandas as pd

    html = evaluated.html_path.read_text()
    assert "<svg" in html and "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    for section in ("Training curves", "Forgetting probes", "Fairness", "Gate checks", "Candidate vs baseline"):
        assert section in html
    notes = pd.read_parquet(toy_data / "test" / "part-0.parquet")["text"]
    assert not any(t[:60] in html for t in notes)
    assert not any(t[:60] in evaluated.report_path.read_text() for t in notes)


def test_every_items_full_answers_are_stored_beside_the_report(evaluated, toy_data):
    from clinitune.evaluate.answers import read_answers

    rep = evaluated.report
    section = rep["answers"]
    assert section["file"] == "answers.jsonl" and section["n"] == rep["data"]["examples"] == 20
    assert section["arms"] == ["baseline", "candidate"] and section["slice_keys"] == ["sex", "age_band", "note_type"]
    records = read_answers(evaluated.output_dir, section)
    assert len(records) == 20 and len({r["example_id"] for r in records}) == 20
    samples = {e["example_id"]: e for e in rep["examples"]}
    for r in records:
        assert set(r["answers"]) == {"candidate", "baseline"} and set(r["slices"]) == {"sex", "age_band", "note_type"}
        assert r["messages"][-1]["role"] == "user" and r["reference"]
        if r["example_id"] in samples:  # the report's short samples are prefixes of the full answers
            assert r["answers"]["candidate"].startswith(samples[r["example_id"]]["candidate"])
            assert r["answers"]["baseline"].startswith(samples[r["example_id"]]["baseline"])


def test_inputs_of_a_dataset_curated_without_deid_are_withheld(tmp_path):
    import pandas as pd

    from clinitune.evaluate.answers import answer_records, inputs_status

    (tmp_path / "manifest.json").write_text(json.dumps({"deid": {"enabled": False}}))
    assert inputs_status(tmp_path) == "not_deidentified"
    (tmp_path / "manifest.json").write_text(json.dumps({"deid": {"enabled": True, "mode": "tag"}}))
    assert inputs_status(tmp_path) == "deidentified"
    assert inputs_status(tmp_path / "nowhere") == "unknown"
    ex = pd.DataFrame([{"example_id": "e1", "reference": "I10", "slice.sex": "F",
                        "messages": json.dumps([{"role": "user", "content": "note"}, {"role": "assistant", "content": "I10"}])}])
    (rec,) = answer_records(ex, {"candidate": {"e1": "I10"}}, ["sex"], with_inputs=False)
    assert rec["messages"] is None and rec["answers"] == {"candidate": "I10"} and rec["slices"] == {"sex": "F"}


def test_cli_regates_an_existing_report(evaluated, tmp_path, capsys):
    from clinitune.cli.main import main

    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump({"min_task_gain": 0.5}))
    assert main(["evaluate", "--report", str(evaluated.report_path), "--policy", str(strict)]) == 0
    rep = read_report(evaluated.report_path)
    assert rep["gate"]["decision"] == "reject" and any(r.startswith("task_gain") for r in rep["gate"]["reasons"])
    assert "REJECT" in capsys.readouterr().out


def test_bad_input_errors(tiny_artifact, toy_data, tmp_path):
    with pytest.raises(UserError) as err:
        run_evaluation(EvalConfig(candidate=str(tmp_path / "no-such-model"), data=str(toy_data)), local=True)
    assert "candidate" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UserError, match="baseline"):
        run_evaluation(EvalConfig(candidate=str(tiny_artifact), baseline="no-such-base", data=str(toy_data)), local=True)
    with pytest.raises(UserError, match="no 'test' split"):
        run_evaluation(EvalConfig(candidate=str(tiny_artifact), data=str(tiny_artifact)), local=True)
    bad_policy = tmp_path / "gate.yaml"
    bad_policy.write_text(yaml.safe_dump({"primary_metric": "task.accuracy"}))
    with pytest.raises(ConfigError, match="unknown metric"):
        run_evaluation(EvalConfig(candidate=str(tiny_artifact), data=str(toy_data), gate_policy=str(bad_policy)), local=True)


def test_cli_one_line_error_for_missing_model(toy_data, capsys):
    from clinitune.cli.main import main

    assert main(["eval", "--candidate", "/nonexistent/model", "--data", str(toy_data)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: candidate") and err.count("\n") == 1


@pytest.mark.ray
def test_generation_on_ray_data_matches_in_process(ray_session, tiny_artifact, toy_data):
    from clinitune.evaluate.config import ExecutionConfig
    from clinitune.models.generate import run_local, run_on_ray
    from clinitune.evaluate.items import build_eval_set
    from clinitune.artifacts.model import resolve_ref

    cfg = EvalConfig(candidate=str(tiny_artifact), data=str(toy_data), max_examples=6, **SMALL)
    es = build_eval_set(cfg, "icd10_coding", {}, None, [])
    spec = resolve_ref(str(tiny_artifact))
    on_ray = run_on_ray(spec, es.items, ExecutionConfig(cpus_per_actor=0.5, torch_threads=1), batch_size=4)
    local = run_local(spec, es.items, batch_size=4, torch_threads=1)
    assert list(on_ray["item_id"]) == list(es.items["item_id"])
    greedy = ~es.items["do_sample"].values
    assert list(on_ray["output"][greedy]) == list(local["output"][greedy])
    assert on_ray["nll"].dropna().tolist() == pytest.approx(local["nll"].dropna().tolist(), rel=1e-4)
