"""End-to-end fine-tuning on the shared local Ray: LoRA on 2 workers, QLoRA, full, DeepSpeed ZeRO-2."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.ray


def _metrics(artifact):
    return json.loads((artifact / "metrics.json").read_text())


def test_two_worker_lora_lowers_loss_and_writes_the_artifact(ray_session, make_cfg):
    from clinitune import tracking
    from clinitune.train.artifact import load_artifact
    from clinitune.train.trainer import run_finetune

    cfg = make_cfg(training__epochs=2, scaling__num_workers=2)
    artifact = run_finetune(cfg)

    m = _metrics(artifact)
    history = m["history"]
    train_losses = [h["train_loss"] for h in history if "train_loss" in h]
    val_losses = [h["val_loss"] for h in history if "val_loss" in h]
    # 64 sequences / 2 workers / batch 4 = 8 steps per epoch, 2 epochs
    assert m["final"]["step"] == 16 and m["final"]["total_steps"] == 16
    assert train_losses[-1] < train_losses[0] - 0.2
    assert val_losses[-1] < val_losses[0]
    assert all(h["tokens_per_s"] > 0 and h["peak_memory_gib"] > 0 for h in history if "tokens_per_s" in h)

    d = load_artifact(artifact)
    assert d["kind"] == "adapter" and d["method"] == "lora"
    assert d["dataset_hash"] == json.loads((artifact / "dataset_manifest.json").read_text())["dataset_hash"]
    assert (artifact / "adapter" / "adapter_model.safetensors").is_file()
    assert (artifact / "tokenizer" / "chat_template.jinja").is_file()
    assert json.loads((artifact / "config.json").read_text())["scaling"]["num_workers"] == 2

    # metrics went to MLflow (SQLite in the workdir) under the run the artifact names
    c = tracking.client(d["mlflow_tracking_uri"])
    run = c.get_run(d["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert {"train_loss", "val_loss", "tokens_per_s", "lr", "peak_memory_gib"} <= set(run.data.metrics)
    assert run.data.params["method"] == "lora"
    assert len(c.get_metric_history(run.info.run_id, "train_loss")) >= 4

    # the adapter loads onto the base model and the result is a working causal LM
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(d["base_model_path"])
    model = PeftModel.from_pretrained(base, str(artifact / "adapter"))
    out = model(input_ids=torch.tensor([[1, 2, 3]]))
    assert out.logits.shape[-1] == base.config.vocab_size


def test_qlora_runs_steps_on_a_4bit_base(ray_session, make_cfg):
    from clinitune.train.trainer import run_finetune

    artifact = run_finetune(make_cfg(method="qlora", training__max_steps=4, eval__every_n_steps=None,
                                     tracking__enabled=False, scaling__cpus_per_worker=0.5, scaling__threads_per_worker=2))
    m = _metrics(artifact)
    assert m["final"]["step"] == 4
    # a worker reserving half a CPU still computes with the threads asked for, OpenMP included
    # (Ray would set OMP_NUM_THREADS=1 in it; that cost a third of CPU throughput)
    assert m["final"]["torch_threads"] == 2 and m["final"]["omp_threads"] == 2
    assert (artifact / "adapter" / "adapter_config.json").is_file()
    assert json.loads((artifact / "config.json").read_text())["quantization"]["quant_type"] == "nf4"


def test_deepspeed_zero2_full_finetune_runs_steps_and_consolidates(ray_session, make_cfg):
    from transformers import AutoModelForCausalLM

    from clinitune.train.trainer import run_finetune

    cfg = make_cfg(method="full", deepspeed__enabled=True, deepspeed__stage=2, scaling__num_workers=2,
                   training__max_steps=4, training__learning_rate=1e-3, tracking__enabled=False)
    artifact = run_finetune(cfg)
    m = _metrics(artifact)
    assert m["final"]["step"] == 4
    # the consolidated weights load as a plain Hugging Face model and differ from the base
    tuned = AutoModelForCausalLM.from_pretrained(artifact / "model")
    base = AutoModelForCausalLM.from_pretrained(cfg.model)
    assert (tuned.model.layers[0].mlp.up_proj.weight - base.model.layers[0].mlp.up_proj.weight).abs().max() > 0


def test_full_finetune_without_deepspeed_runs_steps(ray_session, make_cfg):
    from clinitune.train.trainer import run_finetune

    artifact = run_finetune(make_cfg(method="full", training__max_steps=3, training__learning_rate=1e-3,
                                     eval__every_n_steps=None, tracking__enabled=False))
    assert _metrics(artifact)["final"]["step"] == 3
    assert (artifact / "model" / "config.json").is_file() and (artifact / "model" / "tokenizer.json").is_file()


def test_padding_free_run_trains_as_the_padded_run_does(ray_session, make_cfg):
    """Same data order, no dropout: one flattened row per micro-batch gives the padded run's losses.

    On CPU the flex attention asked for falls back to SDPA's block-diagonal mask (no flex backward).
    """
    from clinitune.train.trainer import run_finetune

    runs = {}
    for padding_free in (False, True):
        cfg = make_cfg(training__max_steps=4, training__padding_free=padding_free, training__attention="flex_attention",
                       eval__every_n_steps=2, checkpoint__every_n_steps=100, tracking__enabled=False,
                       checkpoint__run_name=f"padding-free-{padding_free}")
        runs[padding_free] = _metrics(run_finetune(cfg))
    padded, flat = runs[False], runs[True]
    assert flat["final"]["step"] == padded["final"]["step"] == 4

    def losses(m, key):
        return [h[key] for h in m["history"] if key in h]

    for key in ("train_loss", "val_loss"):
        assert losses(flat, key) == pytest.approx(losses(padded, key), rel=1e-4, abs=1e-5), key
