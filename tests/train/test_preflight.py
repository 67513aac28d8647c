"""Bad input is a one-line UserError naming the fix, raised before any cluster time is spent."""

from __future__ import annotations

import json
import shutil

import pytest

from clinitune.errors import ConfigError, UserError


def _one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg and "Fix:" in msg
    return msg


def test_unknown_model_path(make_cfg):
    from clinitune.train.preflight import check_model

    with pytest.raises(UserError, match="neither a registered model name nor an existing directory") as err:
        check_model(make_cfg(model="/nowhere/llama-3-8b"))
    _one_line(err)


def test_tokenizer_without_chat_template(make_cfg, tiny_model, tmp_path):
    from clinitune.train.preflight import check_model

    bare = tmp_path / "bare"
    shutil.copytree(tiny_model, bare)
    (bare / "chat_template.jinja").unlink()
    with pytest.raises(UserError, match="no chat template") as err:
        check_model(make_cfg(model=str(bare)))
    _one_line(err)


def test_lora_target_that_does_not_exist(make_cfg):
    from clinitune.train.preflight import check_model

    with pytest.raises(ConfigError, match="lora.target_modules: c_attn not found") as err:
        check_model(make_cfg(lora__target_modules=["q_proj", "c_attn"]))
    assert "q_proj" in _one_line(err) and "all-linear" in str(err.value)
    check_model(make_cfg(lora__target_modules=["q_proj", "v_proj"]))  # real names pass


def test_qlora_on_a_model_bitsandbytes_cannot_quantise(make_cfg, tiny_model, tmp_path):
    from clinitune.train.preflight import check_model

    quantised = tmp_path / "gptq"
    shutil.copytree(tiny_model, quantised)
    cfg = json.loads((quantised / "config.json").read_text())
    cfg["quantization_config"] = {"quant_method": "gptq", "bits": 4}
    (quantised / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="already quantised \\(gptq\\)") as err:
        check_model(make_cfg(method="qlora", model=str(quantised)))
    _one_line(err)


def test_option_combinations(make_cfg):
    from clinitune.train.preflight import check_options

    with pytest.raises(ConfigError, match="use_gpu is false"):
        check_options(make_cfg(method="full", deepspeed__enabled=True, deepspeed__offload_optimizer=True))
    with pytest.raises(ConfigError, match="liger_kernel needs GPUs"):
        check_options(make_cfg(training__liger_kernel=True))
    with pytest.raises(ConfigError, match="needs periodic validation"):
        check_options(make_cfg(eval__early_stopping_patience=2, eval__every_n_steps=None))
    with pytest.raises(ConfigError, match="deepspeed.enabled is true but method is 'lora'"):
        make_cfg(deepspeed__enabled=True)


def test_too_few_examples_for_one_step(make_cfg):
    from clinitune.train.preflight import check_dataset

    manifest = {"splits": {"train": {"sequences": 7}}}
    with pytest.raises(UserError, match="fewer than one optimizer step needs .* = 8") as err:
        check_dataset(make_cfg(training__batch_size=4, scaling__num_workers=2), manifest)
    _one_line(err)


@pytest.mark.ray
def test_more_workers_than_the_cluster_holds(ray_session, make_cfg):
    from clinitune.train.preflight import check_resources

    with pytest.raises(UserError, match="scaling.num_workers 16 x 1 CPU needs 16 CPUs") as err:
        check_resources(make_cfg(scaling__num_workers=16, scaling__cpus_per_worker=1))
    _one_line(err)
    with pytest.raises(UserError, match="has no GPUs"):
        check_resources(make_cfg(scaling__use_gpu=True))
    check_resources(make_cfg(scaling__num_workers=2))


@pytest.mark.ray
def test_run_finetune_stops_at_preflight_without_starting_a_trainer(ray_session, make_cfg, monkeypatch):
    from clinitune.train import trainer

    def no_trainer(*a, **k):  # pragma: no cover - must not be reached
        raise AssertionError("a TorchTrainer was built despite bad input")

    monkeypatch.setattr(trainer, "build_trainer", no_trainer)
    with pytest.raises(UserError, match="lora.target_modules"):
        trainer.run_finetune(make_cfg(lora__target_modules=["nope"]))
    with pytest.raises(UserError, match="scaling.num_workers 64"):
        trainer.run_finetune(make_cfg(scaling__num_workers=64, scaling__cpus_per_worker=1))


def test_lora_on_top_layers_only(make_cfg):
    """top_layers puts adapters on the last N layers only; more layers than the model has is a one-line error."""
    import json
    from pathlib import Path

    from clinitune.train.model_setup import build_model
    from clinitune.train.preflight import check_model

    cfg = make_cfg(lora__top_layers=1)
    model_dir = check_model(cfg)
    n = json.loads((Path(model_dir) / "config.json").read_text())["num_hidden_layers"]
    assert n >= 2
    import torch

    model = build_model(cfg, str(model_dir), torch.device("cpu"))
    adapted = {int(name.split(".layers.")[1].split(".")[0]) for name, p in model.named_parameters()
               if p.requires_grad and ".layers." in name}
    assert adapted == {n - 1}
    with pytest.raises(ConfigError, match=f"lora.top_layers is {n + 1} but model"):
        check_model(make_cfg(lora__top_layers=n + 1))
