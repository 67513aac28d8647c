"""Fixtures for training tests: a tiny random-init model and a small curated dataset, built once."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    from clinitune.models.tiny import create_tiny_model

    return create_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama", hidden_size=64, num_layers=2)


@pytest.fixture(scope="session")
def curated(tmp_path_factory, write_toy_curated):
    return write_toy_curated(tmp_path_factory.mktemp("curated") / "toy", n_train=64, n_validation=16)


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("dataset-cache")


@pytest.fixture
def make_cfg(tiny_model, curated, data_cache, tmp_path):
    """A small finetune config on the tiny model; keyword overrides are dotted paths."""
    from clinitune.train.config import TrainConfig
    from clinitune.config import apply_dotted

    def make(**overrides):
        base = {
            "model": str(tiny_model),
            "method": "lora",
            "data": {"source": str(curated), "max_seq_len": 256, "cache_dir": str(data_cache)},
            "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
            "training": {"epochs": 1, "batch_size": 4, "learning_rate": 3e-3, "warmup_ratio": 0.0,
                         "log_every_n_steps": 2, "shuffle_buffer": 0},
            "eval": {"every_n_steps": 4},
            "checkpoint": {"every_n_steps": 4},
            "scaling": {"num_workers": 1, "cpus_per_worker": 0.5, "max_failures": 0},
            "workdir": str(tmp_path / "work"),
        }
        return TrainConfig.model_validate(apply_dotted(base, {k.replace("__", "."): v for k, v in overrides.items()}))

    return make
