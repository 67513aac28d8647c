"""The demo's wiring (the demo itself is timed by hand: it trains SmolLM2 for ~10 CPU minutes)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_config_wires_every_stage_and_the_rag_arm(tmp_path):
    from clinitune.config import load_config
    from clinitune.pipeline.demo import DEMO_KB, DemoConfig, demo_categories, pipeline_config
    from clinitune.pipeline.runner import _load_stage_configs

    cfg = load_config(ROOT / "jobs" / "configs" / "demo.yaml", DemoConfig, {"workdir": str(tmp_path / "work")})
    assert cfg.rag and cfg.code_pool >= 8
    pc = pipeline_config(cfg, ROOT, kb=tmp_path / "kb")
    _, ft, ev, policy = _load_stage_configs(pc)  # every stage config validates, as the pipeline checks them
    assert ev["rag"] == {**ev["rag"], "enabled": True, "kb": DEMO_KB, "store": str(tmp_path / "kb")}
    assert ft["lora"]["top_layers"] and ft["data"]["replay"]["fraction"] > 0
    assert policy.min_task_gain >= 0.10  # the demo is held to the shipped policy
    # the knowledge base covers whole categories: the demo's labels and their sibling codes
    cats = demo_categories()
    assert 50 < len(cats) < 200 and all(len(c) == 3 for c in cats)
    off = pipeline_config(cfg.model_copy(update={"rag": False}), ROOT)
    assert off.eval_overrides.get("rag.enabled") is None and "data.passages" not in off.finetune_overrides
    assert "min_rag_gain" not in off.gate_overrides and "deployed" not in off.gate_overrides
    assert "consistency.retrieval" not in off.eval_overrides
    # retrieval-aware training reads the same knowledge base; the new codes are held out of training
    assert ft["data"]["passages"]["kb"] == DEMO_KB and ft["data"]["passages"]["store"] == str(tmp_path / "kb")
    assert ft["data"]["holdout_codes"] == cfg.new_codes and len(cfg.new_codes) >= 2
    assert policy.min_rag_gain == 0.0  # retrieval is deployed: it must not make the fine-tuned model worse
    assert policy.deployed == "finetuned_rag" and ev["consistency"]["retrieval"]  # ... and is what the gate judges


def test_new_knowledge_arrives_after_training_and_leaves_before_the_next(tmp_path, monkeypatch):
    """The demo's knowledge base lacks the held-back codes while training, gets their reference text
    after training through the ordinary ingest, and is put back before the next run trains."""
    from clinitune.pipeline import demo
    from clinitune.rag.store import KbStore

    monkeypatch.setenv("CLINITUNE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(demo, "demo_categories", lambda: ["N20", "K76"])
    said: list[str] = []
    root = demo.ensure_icd10_kb(said.append, held_back=["N20.1", "K76.0"])
    store = KbStore(root)
    before = store.fingerprint(demo.DEMO_KB)
    assert not store.documents(demo.DEMO_KB, ["N20.1", "K76.0"]) and store.documents(demo.DEMO_KB, ["N20.0"])
    drop = demo.add_new_knowledge(root, ["N20.1", "K76.0"], tmp_path / "work", said.append)
    assert drop.is_file() and "N20.1" in drop.read_text()
    assert [h.doc_id for h in store.documents(demo.DEMO_KB, ["N20.1", "K76.0"])] == ["N20.1", "K76.0"]
    demo.ensure_icd10_kb(said.append, held_back=["N20.1", "K76.0"])  # the next run: removed again, not re-embedded
    assert store.fingerprint(demo.DEMO_KB) == before and sum("embedded" in m for m in said) == 1


def test_demo_command_finds_the_checkout_its_config_paths_belong_to(tmp_path, monkeypatch):
    """`clinitune pipeline demo` (and jobs/demo.py) resolve jobs/configs/train.yaml & co. against the
    config's checkout, else the working directory, else the checkout the package runs from."""
    from clinitune.cli.pipeline import _checkout_of

    monkeypatch.chdir(tmp_path)
    assert _checkout_of(ROOT / "jobs" / "configs" / "demo.yaml") == ROOT
    mine = tmp_path / "demo.yaml"
    mine.write_text("notes: 300\n")
    assert _checkout_of(mine) == ROOT  # tmp_path has no jobs/configs: the package's checkout
    (tmp_path / "jobs" / "configs").mkdir(parents=True)
    assert _checkout_of(mine) == tmp_path
