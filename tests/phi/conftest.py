"""PHI test fixtures: a toy tagger trained in the session (seconds: one encoder layer, a few
synthetic notes), and the tagger shipped in the package when it is there."""

from __future__ import annotations

import pytest

TOY = {
    "seed": 5,
    "data": {"annotated": [], "synthetic_notes": 6, "synthetic_seed": 77, "synthetic_copies": 1, "keep_phi_free": 0.5},
    "model": {"encoder_layers": 1, "lora_layers": 1, "lora_r": 4, "lora_alpha": 8, "max_length": 64, "stride": 48},
    "training": {"epochs": 1, "batch_size": 8, "threads": 1, "log_every": 1000},
}


def toy_config(**changes):
    from clinitune.config import validate_config
    from clinitune.phi.training.train import PhiTrainConfig

    data = {**TOY, **changes}
    return validate_config(data, PhiTrainConfig, source="toy tagger config")


@pytest.fixture(scope="session")
def toy_config_factory():
    return toy_config


@pytest.fixture(scope="session")
def toy_tagger_dir(tmp_path_factory):
    """A tagger trained at toy size in this session (a real training run, tiny)."""
    from clinitune.phi.training.train import train_tagger
    from clinitune.synth.gold import gold_notes

    return train_tagger(toy_config(), synthetic=gold_notes, output=tmp_path_factory.mktemp("phi-tagger") / "toy")
