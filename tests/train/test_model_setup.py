"""Model setup: gradient checkpointing on some layers keeps the gradients and saves the recompute."""

from __future__ import annotations

import pytest
import torch

from clinitune.errors import ConfigError
from clinitune.train.loop import collate
from clinitune.train.loss import causal_lm_loss
from clinitune.train.model_setup import build_model, trainable_parameters
from clinitune.train.preflight import check_options


@pytest.fixture(scope="module")
def four_layer_model(tmp_path_factory):
    from clinitune.models.tiny import create_tiny_model

    return create_tiny_model(tmp_path_factory.mktemp("models") / "tiny-4", hidden_size=32, num_layers=4)


def _batch() -> dict:
    g = torch.Generator().manual_seed(0)
    ids = [torch.randint(5, 200, (n,), generator=g).numpy() for n in (12, 9)]
    labels = [x.copy() for x in ids]
    for y in labels:
        y[:5] = -100
    return collate({"input_ids": ids, "labels": labels, "lengths": [[len(x)] for x in ids]}, pad_id=0,
                   device=torch.device("cpu"))


def _flags(model) -> list[bool]:
    from transformers.modeling_layers import GradientCheckpointingLayer

    return [bool(m.gradient_checkpointing) for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]


def _grads(model) -> tuple[torch.Tensor, dict, list[int]]:
    """Loss, gradients, and how often each layer's MLP ran (twice where the backward recomputed it)."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    runs = [0] * len(layers)
    for i, layer in enumerate(layers):  # count calls of forward itself: module hooks stay quiet in a recompute
        def counted(*args, _forward=layer.mlp.forward, _i=i, **kwargs):
            runs[_i] += 1
            return _forward(*args, **kwargs)

        layer.mlp.forward = counted
    model.train()
    b = _batch()
    loss = causal_lm_loss(model, b, torch.tensor(b["targets"]), selective=True)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}, runs


def _lora_b_nonzero(model) -> None:
    torch.manual_seed(1)
    for name, p in model.named_parameters():  # B starts at zero: give the adapters gradient both ways
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.02)


@pytest.mark.parametrize("layers, expected", [(None, [True] * 4), (2, [True, True, False, False]), (0, [False] * 4)])
def test_checkpoint_layers_marks_the_first_n_and_keeps_gradients(make_cfg, four_layer_model, layers, expected):
    def model_for(**over):
        torch.manual_seed(0)
        m = build_model(make_cfg(model=str(four_layer_model), **over), str(four_layer_model), torch.device("cpu"))
        _lora_b_nonzero(m)
        return m

    plain = model_for()
    partial = model_for(training__gradient_checkpointing=True, training__checkpoint_layers=layers)
    assert _flags(plain) == [False] * 4
    assert _flags(partial) == expected
    loss_a, ga, runs_a = _grads(plain)
    loss_b, gb, runs_b = _grads(partial)
    assert runs_a == [1] * 4
    assert runs_b == [2 if flag else 1 for flag in expected]  # only checkpointed layers pay the recompute
    assert torch.allclose(loss_a, loss_b, atol=1e-6)
    assert ga.keys() == gb.keys() and len(ga) == len(trainable_parameters(partial))
    for name in ga:
        assert torch.allclose(ga[name], gb[name], atol=1e-6), name


def test_checkpoint_layers_without_checkpointing_is_a_config_error(make_cfg):
    with pytest.raises(ConfigError, match="checkpoint_layers is 4, but gradient_checkpointing is off"):
        check_options(make_cfg(training__checkpoint_layers=4))
