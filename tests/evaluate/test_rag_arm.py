"""The fine-tuned + RAG arm: a real knowledge base (LanceDB + MiniLM), the candidate answering the
held-out prompts again with passages, scored beside base and fine-tuned."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from clinitune.evaluate.config import EvalConfig
from clinitune.evaluate.runner import run_evaluation
from clinitune.rag import KbNotFound, KbStore, ingest_kb

SMALL = {"generation": {"max_new_tokens": 6, "batch_size": 8}, "probes": {"enabled": False}, "consistency": {"enabled": False},
         "loss": False, "max_examples": 8}


@pytest.fixture(scope="module")
def kb_root(toy_data, tmp_path_factory):
    """The ICD-10-CM entries of the codes in the held-out notes, plus unrelated ones, keyed by code."""
    from clinitune.terminology.icd10 import load_icd10_table

    test = pd.read_parquet(toy_data / "test")
    gold = {c for a in test["attributes"] for c in json.loads(a)["icd10"]}
    table = load_icd10_table()
    docs = [e for e in table if e.code in gold] + [e for e in table[::2500] if e.code not in gold]
    root = tmp_path_factory.mktemp("kb")
    src = root / "icd10.jsonl"
    src.write_text("".join(json.dumps({"id": e.code, "title": f"ICD-10-CM {e.code}", "text": f"{e.code} {e.long_name}"}) + "\n"
                           for e in docs))
    report = ingest_kb(KbStore(root / "store"), "icd10", [src])
    assert report.documents == len(docs) > len(gold)
    return root / "store"


def test_rag_arm_scores_the_candidate_with_passages(tiny_artifact, toy_data, kb_root, tmp_path):
    cfg = EvalConfig(candidate=str(tiny_artifact), data=str(toy_data), workdir=str(tmp_path / "work"),
                     rag={"enabled": True, "kb": "icd10", "store": str(kb_root), "top_k": 3}, **SMALL)
    res = run_evaluation(cfg, local=True)
    rep = res.report
    cand, base = rep["metrics"]["candidate"], rep["metrics"]["baseline"]
    assert "rag.task.code_f1" in cand and "rag.task.code_f1" not in base
    # notes name their diagnoses; hybrid retrieval over code + name finds most reference codes
    assert cand["rag.retrieval_recall"] > 0.5
    rag = rep["rag"]
    assert rag["enabled"] and rag["kb"] == "icd10" and rag["top_k"] == 3 and len(rag["examples"]) == 8
    assert all(len(e["retrieved"]) == 3 for e in rag["examples"])
    html = res.html_path.read_text()
    assert "fine-tuned + RAG" in html
    from clinitune.evaluate.report import summary_rows

    assert [r[0] for r in summary_rows(rep)][:2] == ["task.code_f1", "rag.task.code_f1"]


def test_rag_prompts_are_the_serving_prompts(toy_data, kb_root, tmp_path):
    """Passages go into the system message, numbered, as the endpoint puts them."""
    from clinitune.evaluate.items import build_eval_set
    from clinitune.evaluate.rag_arm import rag_items

    cfg = EvalConfig(candidate="unused", data=str(toy_data), workdir=str(tmp_path),
                     rag={"enabled": True, "kb": "icd10", "store": str(kb_root), "top_k": 2}, **SMALL)
    es = build_eval_set(cfg, "icd10_coding", {}, "You are a clinical coding assistant.", [])
    items, retrieved = rag_items(cfg, es)
    assert len(items) == len(es.examples) and set(retrieved) == set(es.examples["example_id"])
    messages = json.loads(items["messages"].iloc[0])
    assert messages[0]["role"] == "system" and messages[0]["content"].startswith("You are a clinical coding assistant.")
    assert "[1] ICD-10-CM" in messages[0]["content"] and "[2] ICD-10-CM" in messages[0]["content"]
    assert messages[-1]["role"] == "user"  # the reference answer is not in the prompt


def test_missing_knowledge_base_fails_before_any_model_runs(tiny_artifact, toy_data, kb_root, tmp_path):
    cfg = EvalConfig(candidate=str(tiny_artifact), data=str(toy_data), workdir=str(tmp_path),
                     rag={"enabled": True, "kb": "formulary", "store": str(kb_root)}, **SMALL)
    with pytest.raises(KbNotFound, match="knowledge base 'formulary' does not exist"):
        run_evaluation(cfg, local=True)
