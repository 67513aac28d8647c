"""Padding-free packing: one row per micro-batch, attention per example, the loss of unpacked training."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from clinitune.train import attention
from clinitune.train.attention import attention_implementation, flatten_batch
from clinitune.train.loop import IGNORE_INDEX, collate
from clinitune.train.loss import causal_lm_loss

CPU = torch.device("cpu")


def _llama(attn: str = "sdpa", seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    model = LlamaForCausalLM(cfg)
    model.set_attn_implementation(attn)
    return model


def _examples(seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(input_ids, labels) of examples with a masked prompt and a target answer, lengths as in SFT data."""
    rng = np.random.default_rng(seed)
    out = []
    for n, prompt in ((13, 8), (5, 2), (21, 15), (9, 4), (3, 1)):
        ids = rng.integers(1, 96, n)
        out.append((ids, np.where(np.arange(n) < prompt, IGNORE_INDEX, ids)))
    return out


def _rows(examples, packed_rows: list[list[int]] | None = None) -> dict:
    """A numpy micro-batch as Ray Data hands it: one example per row, or rows packing several."""
    groups = packed_rows or [[i] for i in range(len(examples))]
    return {"input_ids": [np.concatenate([examples[i][0] for i in g]) for g in groups],
            "labels": [np.concatenate([examples[i][1] for i in g]) for g in groups],
            "lengths": [np.array([len(examples[i][0]) for i in g]) for g in groups]}


def _loss_and_grads(model, batches: list[dict], n_items: int, selective: bool):
    model.zero_grad(set_to_none=True)
    total = torch.zeros(())
    for b in batches:
        loss = causal_lm_loss(model, b, torch.tensor(n_items), selective)
        loss.backward()
        total = total + loss.detach()
    return total, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_flattened_batch_is_what_transformers_padding_free_collator_makes():
    from transformers import DataCollatorWithFlattening

    ex = _examples()
    b = collate(flatten_batch(_rows(ex)), pad_id=0, device=CPU)
    ref = DataCollatorWithFlattening(return_tensors="pt")([{"input_ids": x.tolist(), "labels": y.tolist()} for x, y in ex])
    assert b["input_ids"].shape == (1, sum(len(x) for x, _ in ex))  # no padding at all
    for key in ("input_ids", "labels", "position_ids"):
        assert b[key].tolist() == ref[key].tolist(), key


def test_rows_already_packed_by_the_data_build_flatten_the_same():
    ex = _examples()
    packed = collate(flatten_batch(_rows(ex, [[0, 1], [2], [3, 4]])), pad_id=0, device=CPU)
    single = collate(flatten_batch(_rows(ex)), pad_id=0, device=CPU)
    for key in ("input_ids", "labels", "position_ids"):
        assert packed[key].tolist() == single[key].tolist()
    assert packed["tokens"] == single["tokens"] and packed["targets"] == single["targets"]


def test_labels_mask_prompts_and_each_examples_first_token():
    ex = _examples()
    ids, labels = ex[1]
    labels[0] = ids[0]  # a target on an example's first token would be predicted from the previous example
    b = collate(flatten_batch(_rows(ex)), pad_id=0, device=CPU)
    starts = np.cumsum([0] + [len(x) for x, _ in ex])[:-1]
    got = b["labels"][0].numpy()
    assert (got[starts] == IGNORE_INDEX).all()
    for start, (x, y) in zip(starts, ex):
        span = got[start: start + len(x)]
        assert (span[1:] == y[1:]).all()  # prompt masked, answer kept, elsewhere unchanged
    assert b["targets"] == sum(int((y[1:] != IGNORE_INDEX).sum()) for _, y in ex)
    assert b["position_ids"][0, starts].tolist() == [0] * len(ex)


@pytest.mark.parametrize("selective", [False, True])
def test_padding_free_loss_and_gradients_equal_unpacked_training(selective):
    """One flattened row vs each example alone (no padding, no packing) vs padded rows: same loss, same gradients."""
    model = _llama()
    ex = _examples()
    n_items = sum(int((y[1:] != IGNORE_INDEX).sum()) for _, y in ex)
    alone = [collate(_rows([e]), pad_id=0, device=CPU) for e in ex]
    flat = collate(flatten_batch(_rows(ex)), pad_id=0, device=CPU)
    padded = collate(_rows(ex), pad_id=0, device=CPU)
    assert flat["targets"] == padded["targets"] == n_items
    ref_loss, ref_grads = _loss_and_grads(model, alone, n_items, selective)
    for batch in (flat, padded):
        loss, grads = _loss_and_grads(model, [batch], n_items, selective)
        assert torch.allclose(loss, ref_loss, atol=1e-5, rtol=1e-5)
        assert grads.keys() == ref_grads.keys()
        for name, g in grads.items():
            assert torch.allclose(g, ref_grads[name], atol=1e-5, rtol=1e-4), name


def test_no_attention_across_examples_in_a_flattened_row():
    model = _llama().eval()
    ex = _examples()
    changed = list(ex)
    changed[0] = (np.roll(ex[0][0], 3) % 95 + 1, ex[0][1])  # example A's tokens differ, B.. are the same
    with torch.no_grad():
        logits = [model(input_ids=b["input_ids"], position_ids=b["position_ids"], use_cache=False).logits[0]
                  for b in (collate(flatten_batch(_rows(e)), pad_id=0, device=CPU) for e in (ex, changed))]
    a = len(ex[0][0])
    assert not torch.allclose(logits[0][:a], logits[1][:a])
    assert torch.allclose(logits[0][a:], logits[1][a:], atol=1e-6)


def test_cpu_cannot_train_with_flex_attention_so_packed_rows_fall_back_to_sdpa_with_one_log_line(caplog):
    from transformers import LlamaConfig

    reason = attention.flex_trainable("cpu")
    if reason is None:
        pytest.skip("this torch trains flex attention on CPU: no fall-back to check")
    attention._log_fallback_once.cache_clear()
    with caplog.at_level(logging.INFO, logger="clinitune.train.attention"):
        for requested in ("auto", "flex_attention", "auto"):
            assert attention_implementation(requested, True, CPU, LlamaConfig()) == "sdpa"
    lines = [r for r in caplog.records if "flex attention is unavailable" in r.getMessage()]
    assert len(lines) == 1 and "block-diagonal" in lines[0].getMessage()


def test_auto_takes_flex_attention_only_for_packed_rows_on_a_device_that_trains_it(monkeypatch):
    from transformers import LlamaConfig

    monkeypatch.setattr(attention, "flex_trainable", lambda device_type: None)  # as on a CUDA device
    assert attention_implementation("auto", True, CPU, LlamaConfig()) == "flex_attention"
    assert attention_implementation("auto", False, CPU, LlamaConfig()) == "sdpa"  # plain causal: SDPA's flash path
    assert attention_implementation("sdpa", True, CPU, LlamaConfig()) == "sdpa"
    assert attention_implementation("flex_attention", True, CPU, LlamaConfig(attention_dropout=0.1)) == "sdpa"


def test_build_model_resolves_the_attention_setting(make_cfg):
    from clinitune.train.model_setup import build_model

    model = build_model(make_cfg(training__padding_free=True, training__attention="flex_attention"), make_cfg().model, CPU)
    expected = "sdpa" if attention.flex_trainable("cpu") else "flex_attention"
    assert model.config._attn_implementation == expected


@pytest.mark.slow  # compiling flex attention for CPU takes ~1 minute
def test_flex_attention_document_mask_gives_the_sdpa_loss_and_logits():
    """Forward only: torch 2.13 has no flex attention backward on CPU (the GPU benchmark trains with it)."""
    ex = _examples()
    b = collate(flatten_batch(_rows(ex)), pad_id=0, device=CPU)
    out = {}
    for attn in ("sdpa", "flex_attention"):
        model = _llama(attn).eval()
        with torch.no_grad():
            out[attn] = (model(input_ids=b["input_ids"], position_ids=b["position_ids"], use_cache=False).logits,
                         causal_lm_loss(model, b, torch.tensor(b["targets"]), selective=True))
    assert torch.allclose(out["flex_attention"][0], out["sdpa"][0], atol=1e-5)
    assert torch.allclose(out["flex_attention"][1], out["sdpa"][1], atol=1e-6)
