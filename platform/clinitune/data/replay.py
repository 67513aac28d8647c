"""Replay examples: general-skill conversations mixed into the train split.

Fine-tuning a small model on one task teaches it to answer *every* prompt in that task's shape
(ask it for 7 + 5 and it answers an ICD-10 code). Replaying general conversations during training
is the standard remedy. With ``answers: self`` the model being fine-tuned answers the replay
prompts itself before training (self-distillation), so what the replay preserves is exactly its
own general behaviour, with no hand-written answers and no data from outside.

* ``load_replay_prompts(cfg)``: the conversations (built-in set or a chat JSONL file);
* ``replay_examples(cfg, model_dir)``: rows ``example_id, messages, status`` ready to tokenise;
* ``MixReplay``: a Ray Data batch step interleaving them evenly through each train batch.
"""

from __future__ import annotations

import hashlib
import json
import logging
from importlib import resources
from pathlib import Path

import pandas as pd

from clinitune.data.config import ReplayConfig
from clinitune.errors import ConfigError, UserError

log = logging.getLogger(__name__)

BUILTIN = "builtin:general"
STATUS_OK = "ok"


def _read_jsonl(text: str, source: str) -> list[list[dict]]:
    convs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            messages = json.loads(line)["messages"]
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"data.replay.source '{source}' line {n}: not a JSON object with a 'messages' list.",
                              fix="write one {\"messages\": [{\"role\": ..., \"content\": ...}]} object per line.") from None
        if (not isinstance(messages, list) or not messages
                or not all(isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") in ("system", "user", "assistant")
                           for m in messages)):
            raise ConfigError(f"data.replay.source '{source}' line {n}: 'messages' must be a non-empty list of role/content turns.",
                              fix="use roles system, user and assistant with string content.")
        convs.append(messages)
    return convs


def load_replay_prompts(cfg: ReplayConfig) -> list[list[dict]]:
    """The replay conversations; for ``answers: self`` any trailing assistant turn is removed."""
    if cfg.source == BUILTIN:
        text = resources.files("clinitune.data").joinpath("replay/general.jsonl").read_text(encoding="utf-8")
    else:
        path = Path(cfg.source).expanduser()
        if not path.is_file():
            raise ConfigError(f"data.replay.source '{cfg.source}' is not a file.",
                              fix=f"use {BUILTIN} or the path of a chat JSONL file.")
        text = path.read_text(encoding="utf-8")
    convs = _read_jsonl(text, cfg.source)
    if cfg.answers == "self":
        convs = [c[:-1] if c[-1]["role"] == "assistant" else c for c in convs]
        convs = [c for c in convs if c and c[-1]["role"] == "user"]
    else:
        convs = [c for c in convs if c[-1]["role"] == "assistant"]
    if cfg.max_prompts:
        convs = convs[: cfg.max_prompts]
    if not convs:
        need = "end with a user turn" if cfg.answers == "self" else "end with an assistant turn"
        raise ConfigError(f"data.replay.source '{cfg.source}' has no usable conversation (they must {need}).",
                          fix="add conversations, or switch data.replay.answers.")
    return convs


def replay_fingerprint(cfg: ReplayConfig, model_dir: Path) -> str:
    """Identity of the replay rows: config, conversations and (for self answers) the model's weights."""
    h = hashlib.sha256(json.dumps([cfg.model_dump(mode="json"), load_replay_prompts(cfg)], sort_keys=True).encode())
    if cfg.answers == "self":
        for f in sorted(Path(model_dir).glob("*.safetensors")) + sorted(Path(model_dir).glob("*.bin")):
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def replay_examples(cfg: ReplayConfig, model_dir: Path) -> pd.DataFrame:
    """Rows ``example_id, messages, status``; self answers are generated on one Ray actor."""
    convs = load_replay_prompts(cfg)
    if cfg.answers == "given":
        full = convs
    else:
        from clinitune.artifacts.model import ModelSpec
        from clinitune.models.generate import GenerationResources, make_item, run_on_ray

        items = pd.DataFrame([make_item(f"replay-{i:05d}", "chat", c, max_new_tokens=cfg.max_new_tokens)
                              for i, c in enumerate(convs)])
        spec = ModelSpec.plain(model_dir, name="replay-teacher")
        out = run_on_ray(spec, items, GenerationResources(num_actors=1, cpus_per_actor=1.0, gpus_per_actor=cfg.gpus), batch_size=16)
        answers = dict(zip(out["item_id"], out["output"]))
        full = []
        for i, c in enumerate(convs):
            answer = answers.get(f"replay-{i:05d}", "").strip()
            if answer:  # a prompt the model answers with nothing teaches nothing
                full.append([*c, {"role": "assistant", "content": answer}])
        log.info("replay: the model answered %d of %d prompts", len(full), len(convs))
        if not full:
            raise UserError(f"data.replay: the model '{model_dir}' answered none of the {len(convs)} replay prompts "
                            "(every answer was empty), so there is nothing to replay.",
                            fix="use data.replay.answers: given with a chat JSONL that has answers, or set data.replay: null.")
    return pd.DataFrame({"example_id": [f"replay-{i:05d}" for i in range(len(full))],
                         "messages": [json.dumps(m, ensure_ascii=False) for m in full],
                         "status": [STATUS_OK] * len(full)})


class MixReplay:
    """Interleave replay rows evenly into each batch so they make up ``fraction`` of the rows.

    Which replay rows a batch gets depends only on the batch's first example id: deterministic,
    and spread over the whole replay set.
    """

    def __init__(self, replay: pd.DataFrame, fraction: float):
        self.replay = replay.reset_index(drop=True)
        self.fraction = float(fraction)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        n = len(batch)
        if n == 0 or self.replay.empty:
            return batch
        k = max(1, round(n * self.fraction / (1.0 - self.fraction)))
        first = str(batch["example_id"].iloc[0])
        start = int(hashlib.sha256(first.encode()).hexdigest()[:8], 16) % len(self.replay)
        picks = self.replay.iloc[[(start + j) % len(self.replay) for j in range(k)]].copy()
        picks["example_id"] = [f"{eid}@{first}#{j}" for j, eid in enumerate(picks["example_id"])]
        # replay row j goes just before task row floor((j + 1) * n / (k + 1)): spread through the batch
        picks["_pos"] = [((j + 1) * n) // (k + 1) - 0.5 + j / (2.0 * (k + 1)) for j in range(k)]
        task = batch.assign(_pos=range(n))
        mixed = pd.concat([task, picks.reindex(columns=task.columns)], ignore_index=True)
        return mixed.sort_values("_pos", kind="stable").drop(columns="_pos").reset_index(drop=True)
