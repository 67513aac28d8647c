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
    assert pipeline_config(cfg.model_copy(update={"rag": False}), ROOT).eval_overrides.get("rag.enabled") is None


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
