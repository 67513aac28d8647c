"""Fixtures for evaluation tests: a tiny random-init model, a toy curated dataset with a test split,
and a training artifact (a LoRA adapter on the tiny model) written by the real artifact writer."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from clinitune.models.tiny import create_tiny_model

    return create_tiny_model(tmp_path_factory.mktemp("eval-models") / "tiny", hidden_size=32, num_layers=2)


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory, write_toy_curated) -> Path:
    return write_toy_curated(tmp_path_factory.mktemp("eval-data") / "toy", n_train=12, n_validation=4, n_test=20)


def write_adapter_artifact(out: Path, model_dir: Path, data: Path, *, seed: int = 0, scale: float = 0.5) -> Path:
    """A LoRA adapter with non-zero weights on ``model_dir``, packed by ``write_artifact`` like a training run."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from clinitune.train.artifact import write_artifact
    from clinitune.train.config import TrainConfig

    torch.manual_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, scale)
    ckpt = out.parent / f"{out.name}-ckpt"
    model.save_pretrained(ckpt / "adapter")
    cfg = TrainConfig(model=str(model_dir), data={"source": str(data), "task": {"name": "icd10_coding", "options": {"max_note_chars": 300}},
                                                     "system_prompt": "You are a clinical coding assistant."})
    manifest = {"dataset_hash": "toy", "task": {"name": "icd10_coding"}, "system_prompt": "You are a clinical coding assistant."}
    history = [{"step": 2, "train_loss": 3.0}, {"step": 4, "train_loss": 2.5, "val_loss": 2.7}]
    return write_artifact(out, cfg=cfg, model_dir=Path(model_dir), checkpoint_dir=ckpt, dataset_manifest=manifest,
                          metrics={"train_loss": 2.5}, history=history, run_name=out.name, storage_path=str(out.parent),
                          mlflow_run_id=None, tracking_uri=None)


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory, tiny_model, toy_data) -> Path:
    return write_adapter_artifact(tmp_path_factory.mktemp("eval-artifacts") / "ft-tiny", tiny_model, toy_data)
