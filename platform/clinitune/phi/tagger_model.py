"""The tagger's network, built the same way for training and for inference: the packaged BERT
encoder with a token-classification head, and the LoRA adapter that training adds to it."""

from __future__ import annotations

from pathlib import Path

from clinitune.phi.labels import LABELS

# BERT's linear layers: attention (query, key, value, attention.output.dense), feed-forward
# (intermediate.dense, output.dense). The classification head is trained whole (modules_to_save).
LORA_TARGETS = ("query", "key", "value", "dense")


def build_base(encoder: Path, layers: int = 0):
    """The encoder with a freshly initialised head over :data:`LABELS`; ``layers`` > 0 keeps only
    the first ``layers`` transformer layers (a shallower, faster tagger)."""
    from transformers import AutoConfig, AutoModelForTokenClassification

    cfg = AutoConfig.from_pretrained(
        encoder, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)), label2id={lb: i for i, lb in enumerate(LABELS)})
    if layers:
        cfg.num_hidden_layers = layers
    return AutoModelForTokenClassification.from_pretrained(encoder, config=cfg)


def lora_config(r: int, alpha: int, dropout: float, layers: list[int] | None = None):
    """LoRA on every linear layer of the encoder, or only of ``layers`` (e.g. the top three)."""
    from peft import LoraConfig, TaskType

    return LoraConfig(task_type=TaskType.TOKEN_CLS, r=r, lora_alpha=alpha, lora_dropout=dropout,
                      target_modules=list(LORA_TARGETS), modules_to_save=["classifier"], bias="none",
                      layers_to_transform=layers)
