"""Every YAML config shipped under jobs/ and serving/ loads into its typed model."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from clinitune.config import load_config
from clinitune.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
YAMLS = sorted([*ROOT.glob("jobs/**/*.yaml"), *ROOT.glob("serving/**/*.yaml")])


def _model_for(path: Path):
    """The config model a YAML file is for: by name for job configs, by schema for Serve apps."""
    from importlib import import_module

    models = {
        "curate": ("clinitune.curate.config", "CurateConfig"),
        "data": ("clinitune.data.config", "DataConfig"),
        "train": ("clinitune.train.config", "TrainConfig"),
        "tune": ("clinitune.tune.config", "TuneConfig"),
        "evaluate": ("clinitune.evaluate.config", "EvalConfig"),
        "gate": ("clinitune.evaluate.gate", "GatePolicy"),
        "pipeline": ("clinitune.pipeline.config", "PipelineConfig"),
        "demo": ("clinitune.pipeline.demo", "DemoConfig"),
        "review": ("clinitune.review.config", "ReviewConfig"),
        "phi_train": ("clinitune.phi.training.train", "PhiTrainConfig"),
        "phi_train_synthetic": ("clinitune.phi.training.train", "PhiTrainConfig"),
    }
    stem = path.stem.split(".")[0]
    if path.parent.name == "serving" or "serving" in path.parts:
        return import_module("clinitune.serve.config").ServeAppConfig
    if stem not in models:
        pytest.fail(f"{path.relative_to(ROOT)}: no config model is registered for this file in tests/test_configs.py")
    mod, name = models[stem]
    return getattr(import_module(mod), name)


def test_there_are_configs():
    assert any(p.name == "curate.yaml" for p in YAMLS)


@pytest.mark.parametrize("path", YAMLS, ids=[str(p.relative_to(ROOT)) for p in YAMLS])
def test_yaml_config_loads(path: Path):
    model = _model_for(path)
    cfg = load_config(path, model)
    assert cfg is not None
    # Round trip: the resolved config validates again (nothing the loader silently dropped).
    model.model_validate(cfg.model_dump())


def test_unknown_key_is_a_one_line_error(tmp_path: Path):
    from clinitune.curate.config import CurateConfig

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"dedup": {"treshold": 0.8}}))
    with pytest.raises(ConfigError) as err:
        load_config(bad, CurateConfig)
    msg = str(err.value)
    assert "dedup.treshold" in msg and "\n" not in msg and "Fix" in msg


def test_bad_value_names_the_key(tmp_path: Path):
    from clinitune.curate.config import CurateConfig

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"execution": {"batch_size": 0}}))
    with pytest.raises(ConfigError, match="execution.batch_size"):
        load_config(bad, CurateConfig)


def test_every_config_field_is_documented():
    from pydantic import BaseModel

    from clinitune.curate.config import CurateConfig

    seen: set[type] = set()

    def walk(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            ann = field.annotation
            for candidate in (ann, *getattr(ann, "__args__", ())):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    walk(candidate)

    walk(CurateConfig)
