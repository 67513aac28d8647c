"""Batched autoregressive decoding with per-request sampling settings.

One :class:`BatchDecoder` decodes a batch of prompts together: a left-padded prefill, then one
token per row per :meth:`BatchDecoder.step`, reusing the key/value cache. Every row keeps its own
max tokens, temperature, top-p, stop sequences and seed (its own random generator), so requests
with different settings share a batch. Rows that finish are dropped from the batch (and from the
cache), so a long request does not make short ones pay for padding.

Text comes out incrementally: a row's delta is held back while it could still be the start of a
stop sequence or ends inside a multi-byte character, so streamed text never shows a stop sequence
or a broken character.

A row may carry a constraint (``SamplingParams.constraint``, ``clinitune.constrain``: e.g. only
codes of ICD-10-CM): its state masks the row's logits before sampling, hears every token chosen,
and holds back text a length limit could still cut (an unfinished code), which
``Constraint.complete`` removes when the row ends on its token limit.

Per row, optionally: presence and frequency penalties (OpenAI's definitions, over the tokens the
row generated) and the log-probability of every generated token with its top-k alternatives
(``SamplingParams.logprobs``), taken from the model's distribution before penalties and masks.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from clinitune.constrain.hook import Constraint, ConstraintState, mask_logits

GREEDY_BELOW = 1e-5  # temperatures below this decode greedily


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    constraint: Constraint | None = None  # compiled for this model's tokenizer
    logprobs: int | None = None  # record each generated token's log-probability and this many alternatives
    presence_penalty: float = 0.0  # OpenAI's: minus this from the logit of every token already generated
    frequency_penalty: float = 0.0  # ... and this times how often it was generated


@dataclass
class Delta:
    """New text for one request; the last one of a request carries ``finish_reason`` and usage."""

    text: str
    finish_reason: str | None = None  # "stop" | "length"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    logprobs: list[tuple[int, float, list[tuple[int, float]]]] | None = None  # the last delta: every generated token's


@dataclass
class _Row:
    index: int
    prompt_len: int
    params: SamplingParams
    rng: torch.Generator
    ids: list[int] = field(default_factory=list)
    text: str = ""
    emitted: int = 0  # characters of text already returned
    finish: str | None = None
    reported: bool = False  # the finishing delta has been returned
    constraint: ConstraintState | None = None
    logprobs: list[tuple[int, float, list[tuple[int, float]]]] = field(default_factory=list)


def _holdback(text: str, stops: Sequence[str]) -> int:
    """Characters at the end of ``text`` that could be the beginning of a stop sequence."""
    keep = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), keep, -1):
            if text.endswith(s[:n]):
                keep = n
                break
    return keep


def _sample(logits: torch.Tensor, rows: list[_Row]) -> list[int]:
    """Next token per row: greedy for temperature ~0, else temperature + nucleus sampling."""
    out = logits.argmax(dim=-1).tolist()
    for i, row in enumerate(rows):
        p = row.params
        if p.temperature < GREEDY_BELOW:
            continue
        scores = logits[i].float() / p.temperature
        probs = torch.softmax(scores, dim=-1)
        if p.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            cum = torch.cumsum(sorted_probs, dim=-1)
            cut = (cum - sorted_probs) >= p.top_p  # keep the smallest prefix reaching top_p
            sorted_probs[cut] = 0.0
            probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
        out[i] = int(torch.multinomial(probs, 1, generator=row.rng).item())
    return out


def _log_probs(logits: torch.Tensor, rows: list[_Row]) -> torch.Tensor | None:
    if not any(r.params.logprobs is not None for r in rows):
        return None
    with torch.inference_mode():
        return torch.log_softmax(logits.float(), dim=-1)


def _entry(lp: torch.Tensor, token: int, k: int) -> tuple[int, float, list[tuple[int, float]]]:
    """(token, its log-probability, the k most likely (token, log-probability))."""
    top: list[tuple[int, float]] = []
    if k:
        vals, idx = lp.topk(k)
        top = list(zip(idx.tolist(), vals.tolist()))
    return int(token), float(lp[token]), top


def _penalize(logits: torch.Tensor, rows: list[_Row]) -> None:
    """OpenAI's penalties over the tokens each row generated so far, in place."""
    for i, row in enumerate(rows):
        p = row.params
        if not row.ids or not (p.presence_penalty or p.frequency_penalty):
            continue
        ids, counts = torch.tensor(row.ids, dtype=torch.long, device=logits.device).unique(return_counts=True)
        keep = ids < logits.shape[-1]
        ids, counts = ids[keep], counts[keep]
        logits[i, ids] -= p.frequency_penalty * counts.to(logits.dtype) + p.presence_penalty


def cache_argument(model: torch.nn.Module) -> str:
    """The forward's name for the KV cache: ``cache`` in newer transformers, ``past_key_values`` before.

    transformers renamed it (the old name warns, and goes in 5.40); PEFT wraps the forward with
    ``**kwargs``, so the causal LM's own signature decides.
    """
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(type(base).forward).parameters else "past_key_values"


class BatchDecoder:
    """Decodes ``prompts`` (token id lists) together; call :meth:`step` until :attr:`done`."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        prompts: Sequence[Sequence[int]],
        params: Sequence[SamplingParams],
        *,
        eos_ids: set[int],
        pad_id: int,
        device: str | torch.device = "cpu",
        forward_context: Callable[[], AbstractContextManager] = nullcontext,
    ):
        if len(prompts) != len(params) or not prompts:
            raise ValueError("need one SamplingParams per prompt and at least one prompt")
        self.model = model
        self._cache_kw = cache_argument(model)  # once per batch, not per decode step
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.pad_id = pad_id
        self.device = torch.device(device)
        self.forward_context = forward_context
        self.rows = []
        for i, (prompt, p) in enumerate(zip(prompts, params)):
            rng = torch.Generator(device="cpu")
            rng.manual_seed(p.seed if p.seed is not None else int(torch.randint(0, 2**62, (1,)).item()))
            self.rows.append(_Row(i, len(prompt), p, rng, constraint=p.constraint.begin() if p.constraint else None))
        self._prompts = [list(p) for p in prompts]
        self._active: list[_Row] = list(self.rows)
        self._cache = None
        self._mask: torch.Tensor | None = None
        self._positions: torch.Tensor | None = None
        self._next: torch.Tensor | None = None

    @property
    def done(self) -> bool:
        return all(r.reported for r in self.rows)

    # -- model calls ---------------------------------------------------------------------------
    def _forward(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        from transformers import DynamicCache

        if self._cache is None:
            self._cache = DynamicCache()  # filled in place by every forward
        with torch.inference_mode(), self.forward_context():
            out = self.model(input_ids=input_ids, attention_mask=self._mask, position_ids=positions,
                             use_cache=True, **{self._cache_kw: self._cache})
        return out.logits[:, -1, :]

    def _prefill(self) -> torch.Tensor:
        width = max(len(p) for p in self._prompts)
        ids = torch.full((len(self._prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(self._prompts), width), dtype=torch.long)
        for i, p in enumerate(self._prompts):
            ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[i, width - len(p):] = 1
        self._mask = mask.to(self.device)
        positions = (self._mask.cumsum(-1) - 1).clamp(min=0)
        self._positions = positions[:, -1:]
        return self._forward(ids.to(self.device), positions)

    def _compact(self) -> None:
        """Drop finished rows from the batch and the cache."""
        keep = [i for i, r in enumerate(self._active) if r.finish is None]
        if len(keep) == len(self._active):
            return
        self._active = [self._active[i] for i in keep]
        if not keep:
            return
        idx = torch.tensor(keep, dtype=torch.long, device=self.device)
        self._cache.batch_select_indices(idx)
        self._mask = self._mask.index_select(0, idx)
        self._positions = self._positions.index_select(0, idx)
        self._next = self._next.index_select(0, idx)

    # -- text ----------------------------------------------------------------------------------
    def _advance(self, row: _Row, token: int) -> None:
        p = row.params
        if row.constraint is not None:
            row.constraint.advance(token)
        if token in self.eos_ids:
            row.finish = "stop"
            return
        row.ids.append(token)
        text = self.tokenizer.decode(row.ids, skip_special_tokens=True)
        if p.stop:
            start = max(0, row.emitted - max(len(s) for s in p.stop))
            hits = [i for i in (text.find(s, start) for s in p.stop) if i >= 0]
            if hits:
                row.text = text[: min(hits)]
                row.finish = "stop"
        if row.finish is None:
            row.text = text
            if len(row.ids) >= p.max_tokens:
                row.finish = "length"
        if row.finish is not None and p.constraint is not None:  # a code cut short by a limit or stop is dropped
            row.text = p.constraint.complete(row.text)

    def _delta(self, row: _Row) -> Delta:
        if row.finish is not None:
            end = len(row.text)
        else:
            held = row.constraint.holdback() if row.constraint is not None else 0
            end = len(row.text) - max(_holdback(row.text, row.params.stop), held)
            while end > row.emitted and row.text[end - 1] == "\ufffd":  # an incomplete character
                end -= 1
        piece = row.text[row.emitted:end]
        row.emitted = max(row.emitted, end)
        if row.finish is None:
            return Delta(piece)
        row.reported = True
        return Delta(piece, row.finish, row.prompt_len, len(row.ids),
                     logprobs=list(row.logprobs) if row.params.logprobs is not None else None)

    # -- public --------------------------------------------------------------------------------
    def step(self) -> list[Delta | None]:
        """Decode one token for every unfinished row; ``None`` for rows that finished before."""
        if self.done:
            raise RuntimeError("decoding is finished")
        if self._cache is None:
            logits = self._prefill()
        else:
            self._compact()
            self._mask = torch.cat([self._mask, torch.ones_like(self._next)], dim=1)
            self._positions = self._positions + 1
            logits = self._forward(self._next, self._positions)
        scored = _log_probs(logits, self._active)  # of the model's own distribution, before penalties and masks
        if any(r.params.presence_penalty or r.params.frequency_penalty for r in self._active):
            with torch.inference_mode():
                _penalize(logits, self._active)
        if any(r.constraint is not None for r in self._active):
            with torch.inference_mode():  # the logits are an inference tensor
                mask_logits(logits, [r.constraint for r in self._active])
        tokens = _sample(logits, self._active)
        for i, (row, tok) in enumerate(zip(self._active, tokens)):
            if scored is not None and row.params.logprobs is not None and tok not in self.eos_ids:
                row.logprobs.append(_entry(scored[i], tok, row.params.logprobs))
            self._advance(row, tok)
        self._next = torch.tensor([[t] for t in tokens], dtype=torch.long, device=self.device)
        out: list[Delta | None] = [None] * len(self.rows)
        for row in self._active:
            out[row.index] = self._delta(row)
        return out

    def run(self) -> list[Delta]:
        """Decode to the end; one :class:`Delta` per prompt with the whole text (for tests and baselines)."""
        texts = [""] * len(self.rows)
        final: list[Delta | None] = [None] * len(self.rows)
        while not self.done:
            for i, d in enumerate(self.step()):
                if d is not None:
                    texts[i] += d.text
                    if d.finish_reason:
                        final[i] = Delta(texts[i], d.finish_reason, d.prompt_tokens, d.completion_tokens, logprobs=d.logprobs)
        return [d for d in final if d is not None]
