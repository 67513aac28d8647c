"""The selective-logits loss equals transformers' own loss, with the same gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clinitune.train.loop import collate
from clinitune.train.loss import causal_lm_loss, shifted_targets, supports_selective_logits


def _lora_model():
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    base = LlamaForCausalLM(LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2))
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0))
    for name, p in model.named_parameters():  # non-zero B so the adapters carry gradient both ways
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.02)
    return model


def _batch(packed: bool) -> dict:
    rng = np.random.default_rng(0)
    rows = []
    for n, prompt in ((11, 7), (6, 3), (9, 9)):  # the last row has no target at all
        ids = rng.integers(1, 96, n)
        labels = np.where(np.arange(n) < prompt, -100, ids)
        rows.append((ids, labels))
    lengths = [np.array([6, 5]) if packed else np.array([11]), np.array([6]), np.array([9])]
    return collate({"input_ids": [r[0] for r in rows], "labels": [r[1] for r in rows], "lengths": lengths},
                   pad_id=0, device=torch.device("cpu"))


def test_shifted_targets_pick_the_positions_whose_next_token_is_a_target():
    labels = torch.tensor([[-100, -100, 5, 6], [-100, 7, -100, -100]])
    keep, targets = shifted_targets(labels)
    assert keep.tolist() == [[False, True, True, False], [True, False, False, False]]
    assert targets.tolist() == [5, 6, 7]


@pytest.mark.parametrize("packed", [False, True])
def test_selective_loss_and_gradients_equal_the_full_logits_loss(packed):
    model = _lora_model()
    assert supports_selective_logits(model)
    b = _batch(packed)
    n_items = torch.tensor(b["targets"] + 3)  # the window's count, larger than this micro-batch's
    results = []
    for selective in (False, True):
        model.zero_grad(set_to_none=True)
        loss = causal_lm_loss(model, b, n_items, selective)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        results.append((loss.detach(), grads))
    (full, g_full), (sel, g_sel) = results
    assert b["targets"] == 7 and torch.allclose(full, sel, atol=1e-6)
    assert g_full.keys() == g_sel.keys() and len(g_full) > 0
    for name in g_full:
        assert torch.allclose(g_full[name], g_sel[name], atol=1e-6), name


def test_a_micro_batch_without_targets_gives_a_zero_loss_that_still_backpropagates():
    model = _lora_model()
    b = _batch(False)
    b["labels"][:] = -100
    loss = causal_lm_loss(model, b, torch.tensor(1), selective=True)
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
