"""The model artifact contract: written whole, read back by every consumer the same way."""

from __future__ import annotations

import json

import pytest

from clinitune.artifacts import model as art
from clinitune.errors import UserError


def _artifact(tmp_path, kind="adapter"):
    weights = tmp_path / "ckpt" / ("adapter" if kind == "adapter" else "model")
    weights.mkdir(parents=True)
    (weights / "adapter_config.json").write_text("{}", encoding="utf-8")
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}", encoding="utf-8")
    (base / "tokenizer.json").write_text("{}", encoding="utf-8")
    desc = art.ArtifactDescriptor(kind=kind, method="lora" if kind == "adapter" else "full", base_model="tiny",
                                  base_model_path=str(base), run_name="run-1", system_prompt="sys", metrics={"val_loss": 1.5})
    out = art.write_model_artifact(tmp_path / "out", descriptor=desc, weights_dir=weights, tokenizer_from=base,
                                   training_config={"data": {"task": {"name": "icd10_coding"}}},
                                   dataset_manifest={"dataset_hash": "h"}, metrics={"val_loss": 1.5}, history=[{"step": 1}])
    return out, base


def test_round_trip_and_layout(tmp_path):
    out, base = _artifact(tmp_path)
    assert art.is_artifact(out) and art.has_adapter(out)
    d = art.read_descriptor(out)
    assert d["format"] == art.FORMAT and d["kind"] == "adapter" and d["metrics"] == {"val_loss": 1.5}
    assert art.ArtifactDescriptor.from_json({**d, "future_key": 1}).to_json()["future_key"] == 1
    assert (out / art.TOKENIZER_DIR / "tokenizer.json").is_file()
    assert art.training_config(out)["data"]["task"]["name"] == "icd10_coding"
    assert art.training_metrics(out)["history"] == [{"step": 1}]
    spec = art.resolve_ref(str(out))
    assert (spec.kind, spec.model_path, spec.adapter_path) == ("adapter", str(base), str(out.resolve() / art.ADAPTER_DIR))
    assert spec.name == "run-1" and spec.descriptor["system_prompt"] == "sys"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base", "ckpt", "out"]


def test_full_artifact_carries_its_tokenizer(tmp_path):
    out, _ = _artifact(tmp_path, kind="full")
    assert (out / art.MODEL_DIR / "tokenizer.json").is_file()
    spec = art.resolve_ref(str(out))
    assert spec.kind == "full" and spec.model_path == spec.tokenizer_path == str(out.resolve() / art.MODEL_DIR)


def test_bad_artifacts_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="is not a Clinitune model artifact"):
        art.read_descriptor(tmp_path)
    (tmp_path / art.DESCRIPTOR).write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match="cannot be read as JSON"):
        art.read_descriptor(tmp_path, field_name="candidate")
    assert art.peek_descriptor(tmp_path) == {}
    (tmp_path / art.DESCRIPTOR).write_text(json.dumps({"kind": "adapter", "base_model": "tiny"}), encoding="utf-8")
    with pytest.raises(UserError, match="candidate: artifact .* has no adapter/adapter_config.json"):
        art.resolve_ref(str(tmp_path), field_name="candidate")
