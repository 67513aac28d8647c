"""What a checkpoint holds and how a worker writes and reads it.

A checkpoint directory::

    trainer_state.json       step, epoch, position in the epoch, early-stopping state, metric history
    adapter/                 LoRA / QLoRA: the adapter only (PEFT format; a few MB)
    model/                   full fine-tuning: the weights (plain loop; DeepSpeed at the end, consolidated)
    optimizer.pt, scheduler.pt   plain loop (LoRA, QLoRA, full without DeepSpeed)
    zero/                    DeepSpeed ZeRO state, one shard per rank (intermediate checkpoints)

Rank 0 writes everything except ZeRO shards, which every rank writes into its own directory
and Ray Train merges into one checkpoint in storage.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

STATE_FILE = "trainer_state.json"
ZERO_DIR = "zero"
ZERO_TAG = "state"


@dataclass
class TrainState:
    step: int = 0  # optimizer steps done
    epoch: int = 0  # current epoch (0-based)
    micro_in_epoch: int = 0  # micro-batches of the current epoch already consumed: the data position
    tokens_seen: int = 0  # non-padding tokens trained on, all workers
    best_val_loss: float | None = None
    best_step: int | None = None
    bad_evals: int = 0  # evaluations since the last improvement
    early_stopped: bool = False
    done: bool = False
    total_steps: int = 0
    resumed_from_step: int | None = None  # set when this attempt started from a checkpoint
    restarts: int = 0  # how many times training resumed from a checkpoint
    history: list[dict] = field(default_factory=list)  # reported metrics (rank 0)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "TrainState":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def write_state(d: Path, state: TrainState) -> None:
    (d / STATE_FILE).write_text(json.dumps(state.to_json(), indent=1), encoding="utf-8")


def read_state(d: Path) -> TrainState:
    return TrainState.from_json(json.loads((d / STATE_FILE).read_text(encoding="utf-8")))


def save_plain(d: Path, model, optimizer, scheduler, method: str, *, with_optimizer: bool = True) -> None:
    """Rank 0 of the plain loop: adapter or weights, optimizer and scheduler state."""
    unwrapped = model.module if hasattr(model, "module") else model
    if method in ("lora", "qlora"):
        unwrapped.save_pretrained(d / "adapter")
    else:
        unwrapped.save_pretrained(d / "model")
    if with_optimizer:
        torch.save(optimizer.state_dict(), d / "optimizer.pt")
        torch.save(scheduler.state_dict(), d / "scheduler.pt")


def load_plain(d: Path, model, optimizer, scheduler, method: str) -> None:
    """Every rank of the plain loop: restore the trainable weights, optimizer and scheduler."""
    from safetensors.torch import load_file

    unwrapped = model.module if hasattr(model, "module") else model
    if method in ("lora", "qlora"):
        from peft import set_peft_model_state_dict

        weights = load_file(str(d / "adapter" / "adapter_model.safetensors"))
        set_peft_model_state_dict(unwrapped, weights)
    else:
        state: dict = {}
        for f in sorted((d / "model").glob("*.safetensors")):
            state.update(load_file(str(f)))
        missing, unexpected = unwrapped.load_state_dict(state, strict=False)
        # tied output embeddings are saved once; anything else missing is an error
        missing = [m for m in missing if not m.endswith("lm_head.weight")]
        if missing or unexpected:
            raise RuntimeError(f"checkpoint weights do not match the model: missing {missing[:3]}, unexpected {unexpected[:3]}")
    if (d / "optimizer.pt").is_file():
        optimizer.load_state_dict(torch.load(d / "optimizer.pt", map_location="cpu", weights_only=False))
        scheduler.load_state_dict(torch.load(d / "scheduler.pt", map_location="cpu", weights_only=False))


def save_zero(d: Path, engine) -> None:
    """Every rank: its ZeRO shard (DeepSpeed writes rank-specific file names; Ray merges the dirs)."""
    engine.save_checkpoint(str(d / ZERO_DIR), tag=ZERO_TAG)


def load_zero(d: Path, engine) -> None:
    path, _ = engine.load_checkpoint(str(d / ZERO_DIR), tag=ZERO_TAG)
    if path is None:
        raise RuntimeError("the DeepSpeed checkpoint could not be loaded")


def save_zero_consolidated(d: Path, engine, stage: int, is_rank0: bool) -> None:
    """The full weights in Hugging Face format, gathered from the ZeRO shards (a collective)."""
    module = engine.module
    state = engine._zero3_consolidated_16bit_state_dict() if stage == 3 else module.state_dict()
    if is_rank0:
        module.save_pretrained(d / "model", state_dict=state)
