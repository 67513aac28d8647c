"""Log-likelihoods of token sequences: what benchmark scoring and serving's ``echo``/``logprobs`` share.

* :func:`encode_pair` splits a (context, continuation) pair into token ids the way
  EleutherAI's lm-evaluation-harness does for causal models: trailing spaces of the context move
  to the continuation, the whole string is encoded once and the continuation is what follows the
  context's own encoding. The in-process scorer and a harness driving the served endpoint so score
  exactly the same tokens.
* :func:`token_logprobs` runs sequences through a causal LM in batches (sorted by length, right
  padded, a token budget per batch) and returns, per scored position, the log-probability of the
  token that is there, whether it is the argmax, and optionally the top-k alternatives. Only the
  positions asked for go through the output layer, in chunks, so a 49k-word vocabulary never
  materialises a (batch, length, vocab) tensor.
* :class:`LoglikRunner` loads a model (``artifacts.model.load_model``: adapters merged) and scores
  (context, continuation) requests; :func:`score_on_ray` spreads them over Ray Data actors.
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Callable, Sequence

import pandas as pd

from clinitune.artifacts.model import ModelSpec

log = logging.getLogger(__name__)

REQUEST_COLUMNS = ["request_id", "context", "continuation"]
RESULT_COLUMNS = ["request_id", "logprob", "greedy", "tokens"]
DEFAULT_BATCH_TOKENS = 8192
HEAD_CHUNK = 512  # positions per output-layer call (x vocabulary floats)


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) as lm-evaluation-harness splits them for a causal LM."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = list(tokenizer(context + continuation, add_special_tokens=False)["input_ids"])
    ctx = list(tokenizer(context, add_special_tokens=False)["input_ids"])
    return ctx, whole[len(ctx):]


@dataclass
class Scored:
    """Scores of one sequence from ``start`` on: ``logprobs[i]`` is the log-probability of token
    ``start + i`` given the tokens before it; ``greedy[i]`` whether it was the most likely token;
    ``top[i]`` the ``top_k`` most likely (token id, log-probability) there."""

    start: int
    logprobs: list[float] = field(default_factory=list)
    greedy: list[bool] = field(default_factory=list)
    top: list[list[tuple[int, float]]] = field(default_factory=list)


def _hidden_and_head(model):
    """(callable returning final hidden states, output layer), or None when the model hides them."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    decoder = None
    try:
        decoder = model.get_decoder()
    except (AttributeError, NotImplementedError):
        decoder = None
    if head is None or decoder is None:
        return None
    return decoder, head


def _batches(order: list[int], lengths: list[int], max_tokens: int, max_rows: int) -> list[list[int]]:
    out, cur, width = [], [], 0
    for i in order:
        w = max(width, lengths[i])
        if cur and (w * (len(cur) + 1) > max_tokens or len(cur) >= max_rows):
            out.append(cur)
            cur, w = [], lengths[i]
        cur.append(i)
        width = w
    if cur:
        out.append(cur)
    return out


def token_logprobs(model, sequences: Sequence[Sequence[int]], starts: Sequence[int] | None = None, *, top_k: int = 0,
                   pad_id: int = 0, device: str = "cpu", max_batch_tokens: int = DEFAULT_BATCH_TOKENS,
                   max_rows: int = 64, forward_context: Callable[[], AbstractContextManager] = nullcontext) -> list[Scored]:
    """Scores of ``sequences[i]`` from position ``starts[i]`` (>= 1; default 1) to its end."""
    import torch

    n = len(sequences)
    starts = [1] * n if starts is None else [max(1, int(s)) for s in starts]
    lengths = [len(s) for s in sequences]
    results: list[Scored | None] = [None] * n
    for i in range(n):
        if lengths[i] <= starts[i]:  # nothing to score
            results[i] = Scored(starts[i])
    order = sorted((i for i in range(n) if results[i] is None), key=lambda i: (-lengths[i], i))
    split = _hidden_and_head(model)
    for batch in _batches(order, lengths, max_batch_tokens, max_rows):
        width = max(lengths[i] for i in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, i in enumerate(batch):
            ids[r, : lengths[i]] = torch.tensor(list(sequences[i]), dtype=torch.long)
            mask[r, : lengths[i]] = 1
        with torch.inference_mode(), forward_context():
            ids_d, mask_d = ids.to(device), mask.to(device)
            if split is not None:
                decoder, head = split
                hidden = decoder(input_ids=ids_d, attention_mask=mask_d, use_cache=False).last_hidden_state
            else:  # a model without get_decoder: full logits
                hidden, head = model(input_ids=ids_d, attention_mask=mask_d, use_cache=False).logits, None
            for r, i in enumerate(batch):
                s, e = starts[i], lengths[i]
                # the logits at position p predict token p + 1
                pos_h = hidden[r, s - 1: e - 1]
                targets = ids_d[r, s:e]
                sc = Scored(s)
                for c in range(0, pos_h.shape[0], HEAD_CHUNK):
                    h = pos_h[c: c + HEAD_CHUNK]
                    logits = (head(h) if head is not None else h).float()
                    lp = torch.log_softmax(logits, dim=-1)
                    tgt = targets[c: c + HEAD_CHUNK]
                    chosen = lp.gather(1, tgt.unsqueeze(1)).squeeze(1)
                    best = lp.argmax(dim=-1)
                    sc.logprobs.extend(chosen.cpu().tolist())
                    sc.greedy.extend((best == tgt).cpu().tolist())
                    if top_k:
                        vals, idx = lp.topk(top_k, dim=-1)
                        sc.top.extend([list(zip(ii, vv)) for ii, vv in zip(idx.cpu().tolist(), vals.cpu().tolist())])
                results[i] = sc
    return results  # type: ignore[return-value]


class LoglikRunner:
    """One model scoring (context, continuation) requests: sum of the continuation's token log-probabilities."""

    def __init__(self, spec: dict | ModelSpec, *, device: str = "cpu", dtype: str = "auto", torch_threads: int | None = None,
                 max_batch_tokens: int = DEFAULT_BATCH_TOKENS):
        import torch

        from clinitune.artifacts.model import load_model

        if torch_threads:
            torch.set_num_threads(int(torch_threads))
        self.spec = spec if isinstance(spec, ModelSpec) else ModelSpec(**spec)
        self.device = device
        self.max_batch_tokens = int(max_batch_tokens)
        t0 = time.time()
        self.model, self.tok = load_model(self.spec, device=device, dtype=dtype)
        pad = self.tok.pad_token_id
        self.pad_id = int(pad if pad is not None else (self.tok.eos_token_id or 0))
        self.max_len = int(getattr(self.model.config, "max_position_embeddings", 2048) or 2048)
        log.info("loaded %s for scoring in %.1fs", self.spec.name, time.time() - t0)

    def encode(self, context: str, continuation: str) -> tuple[list[int], int]:
        """Token ids of context + continuation (left-truncated to the model's window) and where the continuation starts."""
        ctx, cont = encode_pair(self.tok, context, continuation)
        ids = (ctx + cont)[-self.max_len:]
        return ids, max(1, len(ids) - len(cont))

    def run(self, requests: pd.DataFrame) -> pd.DataFrame:
        encoded = [self.encode(c, x) for c, x in zip(requests["context"], requests["continuation"])]
        scored = token_logprobs(self.model, [e[0] for e in encoded], [e[1] for e in encoded], pad_id=self.pad_id,
                                device=self.device, max_batch_tokens=self.max_batch_tokens)
        return pd.DataFrame({"request_id": list(requests["request_id"]),
                             "logprob": [float(sum(s.logprobs)) for s in scored],
                             "greedy": [bool(all(s.greedy)) for s in scored],
                             "tokens": [len(s.logprobs) for s in scored]}, columns=RESULT_COLUMNS)


class _LoglikActor:
    """Ray Data callable class: one model per actor, loaded once."""

    def __init__(self, spec: dict, device: str, dtype: str, torch_threads: int | None, max_batch_tokens: int):
        self.runner = LoglikRunner(spec, device=device, dtype=dtype, torch_threads=torch_threads,
                                   max_batch_tokens=max_batch_tokens)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return self.runner.run(batch)


def _length_order(requests: pd.DataFrame) -> pd.DataFrame:
    """Longest first, so each Ray batch holds similar lengths (less padding)."""
    size = requests["context"].str.len() + requests["continuation"].str.len()
    return requests.assign(_n=size).sort_values(["_n", "request_id"], ascending=[False, True], kind="stable").drop(columns="_n")


def score_local(spec: ModelSpec, requests: pd.DataFrame, *, dtype: str = "auto", torch_threads: int | None = None,
                max_batch_tokens: int = DEFAULT_BATCH_TOKENS) -> pd.DataFrame:
    """Score requests in this process (tests, benchmarks, small evaluations)."""
    runner = LoglikRunner(spec, dtype=dtype, torch_threads=torch_threads, max_batch_tokens=max_batch_tokens)
    return runner.run(requests)


def score_on_ray(spec: ModelSpec, requests: pd.DataFrame, execution, *, rows_per_batch: int = 64,
                 max_batch_tokens: int = DEFAULT_BATCH_TOKENS) -> pd.DataFrame:
    """Score requests with Ray Data ``map_batches`` on ``execution.num_actors`` model actors
    (``execution``: ``models.generate.GenerationResources``)."""
    import os

    import ray

    from clinitune.ray_utils import thread_env

    if requests.empty:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    ordered = _length_order(requests[REQUEST_COLUMNS]).reset_index(drop=True)
    gpus = float(execution.gpus_per_actor)
    threads = execution.torch_threads or max(1, int(ray.cluster_resources().get("CPU", os.cpu_count() or 1) // execution.num_actors))
    resources = {"num_gpus": gpus} if gpus > 0 else {}
    out = ray.data.from_pandas(ordered).map_batches(
        _LoglikActor,
        fn_constructor_kwargs={"spec": dict(spec.__dict__), "device": "cuda" if gpus > 0 else "cpu",
                               "dtype": execution.dtype, "torch_threads": threads, "max_batch_tokens": max_batch_tokens},
        batch_size=rows_per_batch,
        batch_format="pandas",
        concurrency=execution.num_actors,
        num_cpus=execution.cpus_per_actor,
        runtime_env=thread_env(threads),
        **resources,
    ).to_pandas()
    return out.set_index("request_id").loc[requests["request_id"]].reset_index()[RESULT_COLUMNS]


__all__ = ["LoglikRunner", "Scored", "encode_pair", "score_local", "score_on_ray", "token_logprobs"]
