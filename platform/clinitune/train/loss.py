"""The causal-LM loss, computing vocabulary logits only where a target is.

Supervised fine-tuning masks the prompt from the loss, so most positions of a batch carry no
target: in the ICD-10 task ~90 % of the tokens are the note. A plain ``model(..., labels=...)``
still projects every position onto the vocabulary (49k columns for SmolLM2, 128k for Llama 3),
upcasts those logits to fp32 and runs a softmax over them. With ``selective`` the model's own
``logits_to_keep`` (a boolean mask, transformers >= 5) keeps only the hidden states of positions
whose next token is a target, and the loss is the same token-summed cross-entropy divided by the
window's target count that transformers computes with ``num_items_in_batch``: same value, same
gradients, less compute and memory in the output head.

Models whose forward has no ``logits_to_keep`` take the plain path, and so do runs with
``selective_logits`` off (with liger-kernel, its fused linear cross-entropy then never
materialises the logits, but still projects every position).
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F

from clinitune.models.chat import IGNORE_INDEX


def _causal_lm(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model inside DDP / DeepSpeed / PEFT wrappers."""
    m = model
    while hasattr(m, "module"):  # DDP, DeepSpeed engine
        m = m.module
    if hasattr(m, "get_base_model"):  # PEFT
        m = m.get_base_model()
    return m


def transformers_slices_logits() -> bool:
    """True when this transformers takes a boolean ``logits_to_keep`` mask (``slice_logits_to_keep``)."""
    from transformers import modeling_utils

    return hasattr(modeling_utils, "slice_logits_to_keep")


def supports_selective_logits(model: torch.nn.Module) -> bool:
    """True when the model's forward slices hidden states with a boolean ``logits_to_keep`` mask."""
    if not transformers_slices_logits():
        return False
    return "logits_to_keep" in inspect.signature(_causal_lm(model).forward).parameters


def shifted_targets(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask of positions whose next token is a target, those next tokens in row-major order)."""
    nxt = F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)
    keep = nxt != IGNORE_INDEX
    return keep, nxt[keep]


def causal_lm_loss(model: torch.nn.Module, batch: dict, num_items: torch.Tensor, selective: bool) -> torch.Tensor:
    """Sum of next-token cross-entropy over the batch's targets, divided by ``num_items``.

    ``batch`` holds ``input_ids``, ``position_ids`` and ``labels`` (prompt and padding =
    ``IGNORE_INDEX``), as ``collate`` makes them. ``num_items`` is the target count of the whole
    accumulation window, so micro-batches of different sizes weigh each token equally.
    """
    if not selective:
        out = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], labels=batch["labels"],
                    use_cache=False, num_items_in_batch=num_items)
        return out.loss
    keep, targets = shifted_targets(batch["labels"])
    if not bool(keep.any()):  # no target in this micro-batch: a zero that still reaches every parameter's graph
        out = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False, logits_to_keep=1)
        return out.logits.sum() * 0.0
    out = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False, logits_to_keep=keep)
    logits = out.logits.reshape(-1, out.logits.shape[-1]).float()
    return F.cross_entropy(logits, targets, reduction="sum") / num_items.to(logits.device)
