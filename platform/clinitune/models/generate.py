"""Batched inference over items, in-process or on Ray Data (one model per actor): what evaluation
scores and what data replay uses for self answers.

An *item* is one row: ``item_id``, ``op`` and ``messages`` (a JSON chat), plus generation
settings. Ops:

* ``chat``: render ``messages`` with the chat template and the generation prompt, then generate
  (greedy, or sampled with ``seed``/``temperature``/``top_p`` when ``do_sample``), under the
  item's ``constraint`` when it names one (``codes:icd10cm``: ``clinitune.constrain``; the same
  hook serving's decoder uses);
* ``canary``: render the whole conversation, cut it just before ``cut`` (a canary's secret) and
  continue greedily: what a model that memorised its training text would say next;
* ``nll``: the summed cross-entropy of the assistant turn(s) given the rest (held-out loss).

Every op returns ``output`` (text), ``nll`` and ``target_tokens``. Items are rendered on the
worker with the worker's own tokenizer, so candidate and baseline each get their own template.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Literal

import pandas as pd
from pydantic import Field

from clinitune.artifacts.model import ModelSpec
from clinitune.config import StrictModel

log = logging.getLogger(__name__)

ITEM_COLUMNS = ["item_id", "op", "messages", "cut", "max_new_tokens", "do_sample", "seed", "temperature", "top_p",
                "constraint"]
RESULT_COLUMNS = ["item_id", "output", "nll", "target_tokens", "new_tokens"]
MAX_PROMPT_TOKENS = 4096


class GenerationResources(StrictModel):
    """The model actors answering items on the Ray cluster."""

    num_actors: int = Field(1, ge=1, description="Model replicas generating in parallel (one Ray actor each).")
    cpus_per_actor: float = Field(1.0, gt=0, description="CPUs reserved per generation actor.")
    gpus_per_actor: float = Field(0.0, ge=0, description="GPUs per generation actor (0 = CPU).")
    torch_threads: int | None = Field(None, ge=1, description="PyTorch CPU threads per actor; null = all cores of the node (they are idle while the eval runs).")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="Weights dtype: auto = bfloat16 on GPU, float32 on CPU.")


def cut_at_secret(rendered: str, secret: str) -> str | None:
    """The rendered text up to (not including) the secret; None when the secret is absent (the ``canary`` op)."""
    i = rendered.find(secret)
    return rendered[:i] if i > 0 else None


def make_item(item_id: str, op: str, messages: list[dict], *, cut: str = "", max_new_tokens: int = 32,
              do_sample: bool = False, seed: int = 0, temperature: float = 1.0, top_p: float = 1.0,
              constraint: str = "") -> dict:
    return {"item_id": item_id, "op": op, "messages": json.dumps(messages, ensure_ascii=False), "cut": cut,
            "max_new_tokens": int(max_new_tokens), "do_sample": bool(do_sample), "seed": int(seed),
            "temperature": float(temperature), "top_p": float(top_p), "constraint": str(constraint or "")}


class ModelRunner:
    """Loads one model and answers items in batches."""

    def __init__(self, spec: dict | ModelSpec, *, device: str = "cpu", dtype: str = "auto", torch_threads: int | None = None,
                 batch_size: int = 8):
        import torch

        from clinitune.artifacts.model import load_model

        if torch_threads:
            torch.set_num_threads(int(torch_threads))
        self.spec = spec if isinstance(spec, ModelSpec) else ModelSpec(**spec)
        self.device = device
        self.batch_size = int(batch_size)
        t0 = time.time()
        self.model, self.tok = load_model(self.spec, device=device, dtype=dtype)
        self.eos_ids = self._eos_ids()
        log.info("loaded %s in %.1fs", self.spec.name, time.time() - t0)

    def _eos_ids(self) -> list[int]:
        ids = {self.tok.eos_token_id}
        gen = getattr(self.model, "generation_config", None)
        extra = getattr(gen, "eos_token_id", None)
        for e in (extra if isinstance(extra, (list, tuple)) else [extra]):
            if e is not None:
                ids.add(int(e))
        im_end = self.tok.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in self.tok.get_vocab() else None
        if im_end is not None:
            ids.add(int(im_end))
        return sorted(i for i in ids if i is not None)

    # --- rendering -------------------------------------------------------------------------

    def _prompt(self, row: dict) -> str | None:
        messages = json.loads(row["messages"])
        if row["op"] == "chat":
            return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if row["op"] == "canary":
            return cut_at_secret(self.tok.apply_chat_template(messages, tokenize=False), row["cut"])
        raise ValueError(f"op {row['op']} has no prompt")

    def _constraint(self, spec: str):
        from clinitune.constrain.registry import build_constraint

        return build_constraint(spec, self.tok, self.eos_ids) if spec else None

    # --- ops -------------------------------------------------------------------------------

    def _generate(self, rows: list[dict]) -> list[dict]:
        import torch
        from transformers import GenerationConfig

        prompts = [self._prompt(r) for r in rows]
        out = [{"item_id": r["item_id"], "output": "", "nll": None, "target_tokens": 0, "new_tokens": 0} for r in rows]
        live = [i for i, p in enumerate(prompts) if p]
        if not live:
            return out
        first = rows[live[0]]
        enc = self.tok([prompts[i] for i in live], return_tensors="pt", padding=True, add_special_tokens=False,
                       truncation=True, max_length=MAX_PROMPT_TOKENS)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        sample = bool(first["do_sample"])
        constraint = self._constraint(str(first.get("constraint") or ""))
        processors = None
        if constraint is not None:
            from transformers import LogitsProcessorList

            from clinitune.constrain.hook import ConstraintLogitsProcessor

            processors = LogitsProcessorList([ConstraintLogitsProcessor([constraint.begin() for _ in live],
                                                                        enc["input_ids"].shape[1])])
        gcfg = GenerationConfig(max_new_tokens=max(int(rows[i]["max_new_tokens"]) for i in live), do_sample=sample,
                                temperature=float(first["temperature"]) if sample else None,
                                top_p=float(first["top_p"]) if sample else None, top_k=None,
                                pad_token_id=self.tok.pad_token_id, eos_token_id=self.eos_ids)
        if sample:
            torch.manual_seed(int(first["seed"]))
        with torch.no_grad():
            gen = self.model.generate(**enc, generation_config=gcfg, logits_processor=processors)
        new = gen[:, enc["input_ids"].shape[1]:]
        for j, i in enumerate(live):
            ids = new[j].tolist()
            limit = int(rows[i]["max_new_tokens"])
            ids = ids[:limit]
            keep = []
            for t in ids:
                if t in self.eos_ids:
                    break
                keep.append(t)
            text = self.tok.decode(keep, skip_special_tokens=True)
            if constraint is not None:  # a length limit may have cut a code short
                text = constraint.complete(text)
            out[i]["output"] = text.strip()
            out[i]["new_tokens"] = len(keep)
        return out

    def _nll(self, rows: list[dict]) -> list[dict]:
        import torch

        from clinitune.models.chat import IGNORE_INDEX, render_segments

        out = []
        seqs = []
        for r in rows:
            segments = render_segments(self.tok, json.loads(r["messages"]))
            ids: list[int] = []
            labels: list[int] = []
            if segments:
                pieces = self.tok([t for t, _ in segments], add_special_tokens=False)["input_ids"]
                for (_, target), piece in zip(segments, pieces):
                    ids.extend(piece)
                    labels.extend(piece if target else [IGNORE_INDEX] * len(piece))
            seqs.append((ids[:MAX_PROMPT_TOKENS], labels[:MAX_PROMPT_TOKENS]))
        width = max((len(s[0]) for s in seqs), default=0)
        if width == 0:
            return [{"item_id": r["item_id"], "output": "", "nll": None, "target_tokens": 0, "new_tokens": 0} for r in rows]
        pad = self.tok.pad_token_id
        input_ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        labels_t = torch.full((len(seqs), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, (ids, labels) in enumerate(seqs):  # right padding: positions stay 0..n-1
            input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            labels_t[i, : len(labels)] = torch.tensor(labels, dtype=torch.long)
            mask[i, : len(ids)] = 1
        with torch.no_grad():
            logits = self.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)).logits.float()
        shift_logits = logits[:, :-1].cpu()
        shift_labels = labels_t[:, 1:]
        loss = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1),
                                                 ignore_index=IGNORE_INDEX, reduction="none").view(shift_labels.shape)
        valid = shift_labels != IGNORE_INDEX
        for i, r in enumerate(rows):
            n = int(valid[i].sum())
            out.append({"item_id": r["item_id"], "output": "", "nll": float(loss[i][valid[i]].sum()) if n else None,
                        "target_tokens": n, "new_tokens": 0})
        return out

    # --- batches ---------------------------------------------------------------------------

    @staticmethod
    def _group_key(r: dict) -> tuple:
        if r["op"] == "nll":
            return ("nll",)
        return ("gen", bool(r["do_sample"]), int(r["seed"]) if r["do_sample"] else 0,
                float(r["temperature"]) if r["do_sample"] else 0.0, float(r["top_p"]) if r["do_sample"] else 0.0,
                str(r.get("constraint") or ""))

    def run(self, items: pd.DataFrame) -> pd.DataFrame:
        """Answer every item (grouped by op and sampling settings, in chunks of ``batch_size``)."""
        rows = items.to_dict("records")
        groups: dict[tuple, list[dict]] = {}
        for r in rows:
            groups.setdefault(self._group_key(r), []).append(r)
        results: dict[str, dict] = {}
        for key, members in groups.items():
            for i in range(0, len(members), self.batch_size):
                chunk = members[i: i + self.batch_size]
                done = self._nll(chunk) if key[0] == "nll" else self._generate(chunk)
                results.update({d["item_id"]: d for d in done})
        return pd.DataFrame([results[r["item_id"]] for r in rows], columns=RESULT_COLUMNS)


class _RunnerActor:
    """Ray Data callable class: one model per actor, loaded once."""

    def __init__(self, spec: dict, device: str, dtype: str, torch_threads: int | None, batch_size: int):
        self.runner = ModelRunner(spec, device=device, dtype=dtype, torch_threads=torch_threads, batch_size=batch_size)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return self.runner.run(batch)


def order_items(items: pd.DataFrame) -> pd.DataFrame:
    """Sort so each batch is one op with one sampling setting and similar lengths (less padding)."""
    key = items.assign(_g=items["op"].map({"nll": 0, "chat": 1, "canary": 2}).fillna(3),
                       _len=items["messages"].str.len())
    if "constraint" not in key.columns:
        key["constraint"] = ""
    return key.sort_values(["_g", "do_sample", "seed", "constraint", "_len", "item_id"], kind="stable").drop(columns=["_g", "_len"])


def run_local(spec: ModelSpec, items: pd.DataFrame, *, batch_size: int = 8, dtype: str = "auto",
              torch_threads: int | None = None) -> pd.DataFrame:
    """Answer items in this process (tests, tiny evals)."""
    runner = ModelRunner(spec, dtype=dtype, torch_threads=torch_threads, batch_size=batch_size)
    return runner.run(order_items(items)).set_index("item_id").loc[items["item_id"]].reset_index()


def run_on_ray(spec: ModelSpec, items: pd.DataFrame, execution: GenerationResources, *, batch_size: int = 8) -> pd.DataFrame:
    """Answer items with Ray Data ``map_batches`` on ``execution.num_actors`` model actors."""
    import os

    import ray

    from clinitune.ray_utils import thread_env

    ordered = order_items(items).reset_index(drop=True)
    gpus = float(execution.gpus_per_actor)
    threads = execution.torch_threads or max(1, int(ray.cluster_resources().get("CPU", os.cpu_count() or 1) // execution.num_actors))
    ds = ray.data.from_pandas(ordered)
    resources = {"num_gpus": gpus} if gpus > 0 else {}
    out = ds.map_batches(
        _RunnerActor,
        fn_constructor_kwargs={"spec": dict(spec.__dict__), "device": "cuda" if gpus > 0 else "cpu",
                               "dtype": execution.dtype, "torch_threads": threads, "batch_size": batch_size},
        batch_size=batch_size,
        batch_format="pandas",
        concurrency=execution.num_actors,
        num_cpus=execution.cpus_per_actor,
        runtime_env=thread_env(threads),
        **resources,
    )
    result = out.to_pandas()
    return result.set_index("item_id").loc[items["item_id"]].reset_index()
