"""Which attention kernel a training worker builds its model with, and the packed rows it feeds it.

A packed row (several examples in one sequence, each with position ids starting again at 0) must
attend only within each example. transformers (>= 5) reads the documents from the position ids
when no attention mask is given and builds the per-document causal mask for the model's
attention implementation:

* ``flex_attention``: a ``BlockMask`` from ``create_block_mask`` with a document mask; the fused
  flex kernel skips the blocks between documents entirely. The way to train on packed rows fast
  on a GPU (varlen flash attention does not build here).
* ``sdpa``: an explicit block-diagonal causal mask handed to ``scaled_dot_product_attention``
  (dense, so O(T^2) memory and no flash kernel); the same loss, and what runs everywhere.

``training.attention: auto`` picks flex attention when rows are packed (``data.packing`` or
``training.padding_free``) and the device can train with it, SDPA otherwise. Flex attention has no
backward on CPU (torch 2.13) and no attention dropout: such runs fall back to SDPA with one log line.
"""

from __future__ import annotations

import functools
import logging
import warnings

import numpy as np
import torch

log = logging.getLogger(__name__)

FLEX = "flex_attention"
SDPA = "sdpa"


@functools.lru_cache(maxsize=8)
def flex_trainable(device_type: str) -> str | None:
    """None when flex attention can run forward and backward on ``device_type``, else the reason it cannot.

    The probe is one tiny eager call (no compilation): torch refuses unsupported devices up front.
    """
    from transformers.utils import is_torch_flex_attn_available

    if not is_torch_flex_attn_available():
        return "this torch has no torch.nn.attention.flex_attention"
    try:
        from torch.nn.attention.flex_attention import flex_attention

        q = torch.zeros(1, 1, 16, 16, device=device_type, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "called without torch.compile": expected for a probe
            flex_attention(q, q, q).sum().backward()
    except Exception as err:  # noqa: BLE001 - any refusal means: not on this device
        return f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"
    return None


def attention_implementation(requested: str, packed_rows: bool, device: torch.device, model_config=None) -> str:
    """The ``attn_implementation`` to build the model with (see the module doc); logs a fall-back once."""
    if requested == SDPA or (requested == "auto" and not packed_rows):
        return SDPA
    reason = flex_trainable(device.type)
    dropout = float(getattr(model_config, "attention_dropout", 0.0) or 0.0)
    if reason is None and dropout > 0:
        reason = f"the model has attention_dropout={dropout}, which flex attention does not support"
    if reason is not None:
        _log_fallback_once(device.type, reason)
        return SDPA
    return FLEX


@functools.lru_cache(maxsize=8)
def _log_fallback_once(device_type: str, reason: str) -> None:
    log.info("flex attention is unavailable for training on %s (%s): packed rows use SDPA with a "
             "block-diagonal causal mask instead (same loss, slower on long rows)", device_type, reason)


def flatten_batch(batch: dict) -> dict:
    """A micro-batch as one row of every example back to back: no padding at all (padding-free packing).

    ``batch`` holds ragged ``input_ids``, ``labels`` and ``lengths`` (the examples in each row). The
    result is a one-row batch of the same form whose ``lengths`` list every example, so ``collate``
    restarts the position ids at each example (and masks each example's first label).
    """
    rows = len(batch["input_ids"])
    if rows <= 1:
        return batch
    return {
        "input_ids": [np.concatenate([np.asarray(x) for x in batch["input_ids"]])],
        "labels": [np.concatenate([np.asarray(y) for y in batch["labels"]])],
        "lengths": [np.concatenate([np.asarray(n) for n in batch["lengths"]])],
    }
