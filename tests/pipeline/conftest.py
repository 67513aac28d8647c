"""Fixtures for the continuous-pipeline tests: a tiny random-init model and a pipeline config factory
that runs the shipped job configs (jobs/configs/*.yaml) with a tiny recipe on top."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "jobs" / "configs"

# Gate policies: one any candidate passes, one none can (a code F1 gain above 1 is impossible).
PERMISSIVE = {"min_task_gain": -1.0, "max_forgetting_regression": 1.0, "max_phi_extraction_rate": 1.0,
              "max_fairness_gap": None, "max_hallucination_rate": None}
IMPOSSIBLE = {**PERMISSIVE, "min_task_gain": 2.0}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from clinitune.models.tiny import create_tiny_model

    return create_tiny_model(tmp_path_factory.mktemp("pipeline-models") / "tiny", hidden_size=32, num_layers=2)


@pytest.fixture(scope="session")
def write_notes():
    """``write_notes(out, n, seed)``: ``n`` synthetic notes as JSONL (plus ``_synth_manifest.json``) in ``out``."""
    from clinitune.synth.generate import SynthOptions
    from clinitune.synth.writer import generate_dataset

    def write(out: Path, n: int, seed: int) -> Path:
        generate_dataset(n, out, seed=seed, options=SynthOptions(max_chars=800), use_ray=False)
        return out

    return write


@pytest.fixture(scope="session")
def gate_policies() -> dict[str, dict]:
    return {"permissive": PERMISSIVE, "impossible": IMPOSSIBLE}


@pytest.fixture(scope="module")
def make_pipeline_cfg(tiny_model, tmp_path_factory):
    """``make(workdir, inbox, policy=PERMISSIVE, **keys)`` -> PipelineConfig with a few-step recipe."""
    from clinitune.pipeline.config import PipelineConfig

    policies = tmp_path_factory.mktemp("gate-policies")
    cache = tmp_path_factory.mktemp("pipeline-dataset-cache")

    def make(workdir: Path, inbox: Path, *, policy: dict | None = None, **keys) -> PipelineConfig:
        text = yaml.safe_dump(policy or PERMISSIVE)
        policy_path = policies / f"gate-{hashlib.sha256(text.encode()).hexdigest()[:8]}.yaml"
        policy_path.write_text(text)
        return PipelineConfig(
            inbox=str(inbox), workdir=str(workdir),
            curate_config=str(CONFIGS / "curate.yaml"),
            curate_overrides={"split.train": 0.6, "split.validation": 0.2, "split.test": 0.2},
            finetune_config=str(CONFIGS / "train.yaml"),
            finetune_overrides={
                "model": str(tiny_model), "data.max_seq_len": 512, "data.task.options.max_note_chars": 200,
                "data.max_examples": {"train": 24, "validation": 8}, "data.cache_dir": str(cache),
                "lora.r": 4, "lora.alpha": 8, "lora.dropout": 0.0,
                "training.max_steps": 4, "training.batch_size": 4, "training.learning_rate": 3e-3,
                "training.warmup_ratio": 0.0, "training.shuffle_buffer": 0, "training.log_every_n_steps": 2,
                "eval.every_n_steps": 4, "checkpoint.every_n_steps": 2,
                "scaling.cpus_per_worker": 0.5, "scaling.threads_per_worker": 1, "scaling.max_failures": 0,
            },
            eval_config=str(CONFIGS / "evaluate.yaml"),
            eval_overrides={
                "max_examples": 6, "generation.max_new_tokens": 6, "probes.max_per_family": 2,
                "probes.max_new_tokens": 6, "consistency.n_examples": 2, "consistency.seeds": [1],
                "canaries.max_new_tokens": 8, "fairness.min_slice_size": 2,
                "execution.cpus_per_actor": 0.5, "execution.torch_threads": 1, "benchmarks.sample": 2,
            },
            gate_policy=str(policy_path), canaries=2,
            registry={"tracking_uri": f"sqlite:///{Path(workdir) / 'mlflow.db'}"},
            **keys,
        )

    return make
