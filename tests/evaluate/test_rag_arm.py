"""The four arms: a real knowledge base (LanceDB + MiniLM); base and fine-tuned answer the held-out
prompts with and without passages, under the terminology constraint; the new-knowledge slice."""

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


def test_four_arms_in_report_json_and_html(tiny_artifact, toy_data, kb_root, tmp_path):
    cfg = EvalConfig(candidate=str(tiny_artifact), data=str(toy_data), workdir=str(tmp_path / "work"),
                     rag={"enabled": True, "kb": "icd10", "store": str(kb_root), "top_k": 3},
                     new_knowledge={"codes": ["J44.9"], "max_examples": 4},
                     **{**SMALL, "generation": {**SMALL["generation"], "code_system": "icd10cm"},
                        "consistency": {"n_examples": 2, "paraphrases": 1, "seeds": [1], "retrieval": True, "baseline": False}})
    res = run_evaluation(cfg, local=True)
    rep = res.report
    assert rep["format"] == "clinitune.eval_report/2"
    cand, base = rep["metrics"]["candidate"], rep["metrics"]["baseline"]
    for m in (cand, base):  # base + RAG and fine-tuned + RAG
        assert {"rag.task.code_f1", "rag.task.invalid_code_rate", "rag.retrieval_recall_at_4"} <= set(m)
    arms = rep["arms"]
    assert list(arms) == ["base", "base_rag", "finetuned", "finetuned_rag"]
    for arm in arms.values():
        assert {"code_f1", "invalid_code_rate", "retrieval_recall_at_4", "new_knowledge_code_f1"} <= set(arm)
        assert arm["code_system"] == "icd10cm" and arm["invalid_code_rate"] in (None, 0.0)  # constrained: no invalid code
    assert arms["finetuned_rag"]["retrieval_recall_at_4"] > 0.5  # notes name their diagnoses: the queries find them
    assert arms["finetuned"]["unconstrained"]["invalid_code_rate"] is None or arms["finetuned"]["unconstrained"]["invalid_code_rate"] >= 0
    rec = rep["rag"]["retrieval_recall"]
    assert set(rec["overall"]) == {"@1", "@3", "@4"} and rec["by_note_type"]
    nk = rep["new_knowledge"]
    assert nk["enabled"] and nk["codes"] == ["J44.9"] and 0 < nk["examples"] <= 4
    assert set(nk["arms"]) == {"base", "base_rag", "finetuned", "finetuned_rag"}
    rag = rep["rag"]
    assert rag["enabled"] and rag["kb"] == "icd10" and rag["top_k"] == 3 and len(rag["examples"]) == 8
    assert all(len(e["retrieved"]) == 3 for e in rag["examples"])
    html = res.html_path.read_text()
    for label in ("base + RAG", "fine-tuned + RAG", "retrieval recall@4", "new-knowledge F1", "constraint off"):
        assert label in html
    assert html.count("<svg") >= 2
    from clinitune.evaluate.report import arms_rows, judged_lines, summary_rows

    assert [r[0] for r in summary_rows(rep)][:2] == ["task.code_f1", "rag.task.code_f1"]
    # the terminal (demo, CLI): one row per arm, and the constraint-off row
    assert [r[0] for r in arms_rows(rep)] == ["base", "base + RAG", "fine-tuned", "fine-tuned + RAG", "fine-tuned, constraint off"]
    lines = judged_lines(rep)
    assert any(line.startswith("fine-tuned: hallucinated-code rate") for line in lines)
    assert any(line.startswith("fine-tuned + RAG: hallucinated-code rate") for line in lines)
    assert "rag.hallucination.rate" in cand and "hallucination_rate" in arms["finetuned_rag"]
    con = rep["consistency"]  # measured on the retrieval arm, for the candidate only
    assert con["retrieval"] and con["candidate"]["paraphrase"]["pairs"] == 2 and con["baseline"] is None
    assert "retrieved passages" in con["candidate"]["paraphrase"]["decoding"]


def test_rag_prompts_are_the_serving_prompts(toy_data, kb_root, tmp_path):
    """Passages go into the system message, numbered, as the endpoint puts them."""
    from clinitune.evaluate.items import build_eval_set
    from clinitune.evaluate.rag_arm import rag_items, rag_settings

    cfg = EvalConfig(candidate="unused", data=str(toy_data), workdir=str(tmp_path),
                     rag={"enabled": True, "kb": "icd10", "store": str(kb_root), "top_k": 2}, **SMALL)
    es = build_eval_set(cfg, "icd10_coding", {}, "You are a clinical coding assistant.", [])
    items, retrieved = rag_items(cfg, es, rag_settings(cfg))
    assert len(items) == len(es.examples) and set(retrieved) == set(es.examples["example_id"])
    messages = json.loads(items["messages"].iloc[0])
    assert messages[0]["role"] == "system" and messages[0]["content"].startswith("You are a clinical coding assistant.")
    assert "[1] ICD-10-CM" in messages[0]["content"] and "[2] ICD-10-CM" in messages[0]["content"]
    assert "[3] " not in messages[0]["content"]  # top_k passages in the prompt (more retrieved, for recall@4)
    assert all(len(v) == 4 for v in retrieved.values())
    assert messages[-1]["role"] == "user"  # the reference answer is not in the prompt


def test_missing_knowledge_base_fails_before_any_model_runs(tiny_artifact, toy_data, kb_root, tmp_path):
    cfg = EvalConfig(candidate=str(tiny_artifact), data=str(toy_data), workdir=str(tmp_path),
                     rag={"enabled": True, "kb": "formulary", "store": str(kb_root)}, **SMALL)
    with pytest.raises(KbNotFound, match="knowledge base 'formulary' does not exist"):
        run_evaluation(cfg, local=True)


def test_consistency_on_the_retrieval_arm_reasks_with_the_same_passages(toy_data, kb_root, tmp_path):
    """consistency.retrieval: re-worded and sampled prompts carry their example's RAG passages, exactly as
    its RAG prompt does, and are compared with the RAG answer; without rag.enabled it is a config error."""
    from pydantic import ValidationError

    from clinitune.evaluate.items import build_eval_set
    from clinitune.evaluate.rag_arm import rag_items, rag_settings
    from clinitune.evaluate.scoring import score_model

    cons = {"n_examples": 3, "paraphrases": 2, "seeds": [1], "retrieval": True, "baseline": False}
    cfg = EvalConfig(candidate="unused", data=str(toy_data), workdir=str(tmp_path),
                     rag={"enabled": True, "kb": "icd10", "store": str(kb_root), "top_k": 2}, **{**SMALL, "consistency": cons})
    es = build_eval_set(cfg, "icd10_coding", {}, "You are a clinical coding assistant.", [])
    plain = {r.item_id: json.loads(r.messages) for r in es.candidate_items.itertuples()}
    rag, _ = rag_items(cfg, es, rag_settings(cfg))
    rag_system = {iid.split("/", 1)[1]: json.loads(m)[0]["content"] for iid, m in zip(rag["item_id"], rag["messages"])}
    variants = {r.item_id: json.loads(r.messages) for r in es.candidate_items.itertuples()}
    assert len(variants) == 3 * 3 and es.consistency_arm == "rag/"
    for iid, messages in variants.items():
        ex_id = es.variants[iid][0]
        passages = rag_system[ex_id].split("You are a clinical coding assistant.", 1)[1]
        assert messages[0]["content"] == plain[iid][0]["content"] + passages and messages[1:] == plain[iid][1:]
    assert "with the same 2 retrieved passages" in es.decoding["paraphrase"]
    # compared with the RAG answers: variants answering like them agree, whatever the plain answer said
    ids = list(es.examples["example_id"])
    rows = [(f"task/{i}", "Essential hypertension (I10)") for i in ids] + [(f"rag/{i}", "Asthma (J45.909)") for i in ids]
    rows += [(iid, "Asthma (J45.909)") for iid in variants]
    out = pd.DataFrame(rows, columns=["item_id", "output"])
    sc = score_model(es, out, 2)
    assert sc["metrics"]["consistency.paraphrase_agreement"] == 1.0 and sc["details"]["consistency"]["retrieval"]
    with pytest.raises(ValidationError, match="consistency.retrieval .* needs rag.enabled"):
        EvalConfig(candidate="unused", data=str(toy_data), **{**SMALL, "consistency": cons})
