"""The generator deployment: one base model, LoRA adapters multiplexed per replica, dynamic batching.

* Adapters: the multiplexed model id of a request is its adapter's key (``AdapterRef.key``); Serve
  routes requests to replicas that already hold that adapter, and each replica keeps at most
  ``adapters.max_loaded_per_replica`` adapters loaded (LRU).
* Batching: ``@serve.batch`` gathers concurrent requests for the same adapter (Serve splits batches
  by multiplexed id) into one :class:`BatchDecoder`; streaming and non-streaming requests share
  batches. The batch method is a generator that yields one delta per request per decoding step.
* Every engine call runs on one worker thread, so the event loop keeps accepting requests while a
  batch decodes, and adapter loads never race a forward pass.
"""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import asynccontextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, AsyncIterator

from ray import serve

from clinitune.serve.adapters import BASE_KEY
from clinitune.serve.config import ServeArgs
from clinitune.serve.decoding import Delta, SamplingParams
from clinitune.serve.engine import AdapterLoadError, GenerationEngine
from clinitune.serve.metrics import GeneratorGauges

log = logging.getLogger(__name__)


@dataclass
class GenJob:
    """One generation request as the gateway sends it (already validated and authorised)."""

    key: str  # adapter key = multiplexed model id
    adapter_path: str | None
    messages: list[dict[str, str]] | None
    prompt: str | None
    max_tokens: int | None  # None: the server default, capped by the context window
    temperature: float
    top_p: float
    stop: tuple[str, ...]
    seed: int | None
    constraint: str = ""  # constraint spec (clinitune.constrain.registry), '' = none
    prompt_ids: list[int] | None = None  # a token-id prompt (completions), instead of prompt/messages
    logprobs: int | None = None  # each generated token's log-probability and this many alternatives
    echo: bool = False  # also score the prompt's tokens (completions' echo)
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0


@dataclass
class _Prepared:
    ids: list[int]
    params: SamplingParams


class _LoadedAdapter:
    """What the multiplexed loader caches; eviction (``__del__``) retires the adapter on the engine thread."""

    def __init__(self, internal: str | None, engine: GenerationEngine, pool: ThreadPoolExecutor):
        self.internal = internal
        self._engine = engine
        self._pool = pool

    def __del__(self):
        if self.internal is not None:
            internal, self.internal = self.internal, None
            try:
                self._pool.submit(self._engine.retire_adapter, internal)
            except RuntimeError:  # the pool is shut down: the replica is going away
                pass


def error(status: int, message: str, code: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"status": status, "message": message, "code": code, "param": param}}


@serve.deployment(name="Generator")
class Generator:
    def __init__(self, args: dict[str, Any], model_dir: str):
        cfg = ServeArgs.model_validate(args)
        self.cfg = cfg
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        m = cfg.model
        self.engine = self._pool.submit(
            GenerationEngine, model_dir, dtype=m.dtype, device=m.device, threads=m.torch_threads,
            max_context_tokens=m.max_context_tokens).result()
        self._paths: dict[str, str] = {}
        self.gauges = GeneratorGauges()

        async def load(key: str) -> _LoadedAdapter:  # a plain function: Serve keeps its LRU state on it
            return await self._load(key)

        if cfg.decoding.code_system:  # compile the default constraint now, not on the first request
            from clinitune.constrain.registry import codes_spec

            self._pool.submit(self._constraint, codes_spec(cfg.decoding.code_system)).result()
        self._adapter = serve.multiplexed(max_num_models_per_replica=cfg.adapters.max_loaded_per_replica)(load)
        self._batched.set_max_batch_size(cfg.batching.max_batch_size)
        self._batched.set_batch_wait_timeout_s(cfg.batching.batch_wait_timeout_s)

    def _constraint(self, spec: str):
        from clinitune.constrain.registry import build_constraint

        return build_constraint(spec, self.engine.tokenizer, self.engine.eos_ids)

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _load(self, key: str) -> _LoadedAdapter:
        if key == BASE_KEY:
            return _LoadedAdapter(None, self.engine, self._pool)
        path = self._paths.get(key)
        if path is None:
            raise AdapterLoadError(f"adapter '{key}' has no known path on this replica")
        internal = await self._run(self.engine.load_adapter, key, path)
        return _LoadedAdapter(internal, self.engine, self._pool)

    def _prepare(self, job: GenJob, constraint=None) -> _Prepared | dict[str, Any]:
        eng = self.engine
        if job.prompt_ids is not None:
            ids = list(job.prompt_ids)
            if max(ids) >= len(eng.tokenizer):
                return error(400, f"Token id {max(ids)} is outside this model's vocabulary of {len(eng.tokenizer)}.",
                             "invalid_value", "prompt")
        else:
            ids = eng.encode_chat(job.messages) if job.messages is not None else eng.encode_text(job.prompt or "")
        room = eng.context_tokens - len(ids)
        if room < 1:
            return error(400, f"This model's maximum context length is {eng.context_tokens} tokens; the prompt has "
                              f"{len(ids)}. Shorten the messages or turn retrieval down (retrieval.top_k).",
                         "context_length_exceeded", "messages" if job.messages is not None else "prompt")
        if job.max_tokens is not None and job.max_tokens > room:
            return error(400, f"This model's maximum context length is {eng.context_tokens} tokens; the prompt has "
                              f"{len(ids)} and max_tokens asks for {job.max_tokens}. Lower max_tokens to at most {room}.",
                         "context_length_exceeded", "max_tokens")
        max_tokens = job.max_tokens if job.max_tokens is not None else min(self.cfg.model.default_max_tokens, room)
        return _Prepared(ids, SamplingParams(max_tokens, job.temperature, job.top_p, job.stop, job.seed, constraint,
                                             logprobs=job.logprobs, presence_penalty=job.presence_penalty,
                                             frequency_penalty=job.frequency_penalty))

    async def _ready(self, job: GenJob) -> _Prepared | dict[str, Any]:
        constraint = await self._run(self._constraint, job.constraint) if job.constraint else None  # cached after once
        prep = self._prepare(job, constraint)
        if isinstance(prep, dict):
            return prep
        if job.adapter_path is not None:
            self._paths[job.key] = job.adapter_path
        try:
            await self._adapter(job.key)  # load (or touch in the LRU) before joining a batch
        except AdapterLoadError as err:
            return error(503, f"The adapter for this model cannot be loaded: {err}. Try again later or use another model.",
                         "adapter_unavailable", "model")
        return prep

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.02)
    async def _batched(self, items: list[_Prepared]) -> AsyncIterator[list[Any]]:
        loaded = await self._adapter(serve.get_multiplexed_model_id() or BASE_KEY)
        internal = loaded.internal
        decoder = await self._run(self.engine.decoder, [i.ids for i in items], [i.params for i in items], internal)
        try:
            while not decoder.done:
                deltas = await self._run(decoder.step)
                yield [StopIteration if d is None else d for d in deltas]
        finally:
            await self._run(self.engine.release, internal)

    @asynccontextmanager
    async def _queued(self):
        """Count a request as queued until its first delta, then as running (the replica's queue gauges)."""
        state = {"running": False}

        def first() -> None:
            if not state["running"]:
                state["running"] = True
                self.gauges.move(queued=-1, running=1)

        self.gauges.move(queued=1)
        try:
            yield first
        finally:
            self.gauges.move(running=-1) if state["running"] else self.gauges.move(queued=-1)

    async def generate(self, job: GenJob) -> dict[str, Any]:
        """The whole completion: text, finish_reason and token counts (or an ``error``)."""
        prep = await self._ready(job)
        if isinstance(prep, dict):
            return prep
        parts: list[str] = []
        last: Delta | None = None
        if prep.params.max_tokens == 0:  # echo only: score the prompt, generate nothing
            last = Delta("", "length", len(prep.ids), 0, logprobs=[] if job.logprobs is not None else None)
        else:
            async with self._queued() as started:
                async for d in self._batched(prep):
                    started()
                    parts.append(d.text)
                    last = d
        result = {"text": "".join(parts), "finish_reason": last.finish_reason, "prompt_tokens": last.prompt_tokens,
                  "completion_tokens": last.completion_tokens}
        return await self._logprobs(job, prep, result, last)

    async def _logprobs(self, job: GenJob, prep: _Prepared, result: dict[str, Any], last: Delta) -> dict[str, Any]:
        """Token texts and log-probabilities of the generated tokens (``logprobs``) and of the prompt (``echo``)."""
        from clinitune.serve.logprobs import token_entries, trim_to_text

        tok = self.engine.tokenizer
        if last.logprobs is not None:
            result["tokens"] = trim_to_text(token_entries(tok, last.logprobs, incremental=True), result["text"])
        if job.echo:
            loaded = await self._adapter(job.key)
            scored = (await self._run(self.engine.score, [prep.ids], job.logprobs or 0, loaded.internal))[0]
            first = [(prep.ids[0], None, [])] if prep.ids else []
            rest = [(t, lp, top) for t, lp, top in zip(prep.ids[1:], scored.logprobs, scored.top or [[]] * len(scored.logprobs))]
            result["prompt_tokens_detail"] = token_entries(tok, first + rest)
            result["prompt_text"] = tok.decode(prep.ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        return result

    async def stream(self, job: GenJob) -> AsyncIterator[dict[str, Any]]:
        """Deltas as they are decoded; the last carries finish_reason and token counts (the first may be an ``error``)."""
        prep = await self._ready(job)
        if isinstance(prep, dict):
            yield prep
            return
        async with self._queued() as started:
            async for d in self._batched(prep):
                started()
                yield {"text": d.text, "finish_reason": d.finish_reason, "prompt_tokens": d.prompt_tokens,
                       "completion_tokens": d.completion_tokens}

    async def info(self) -> dict[str, Any]:
        """What the gateway's /ready shows, plus this replica's identity and queue (for operators and chaos tests)."""
        return {"context_tokens": self.engine.context_tokens, "loaded_adapters": self.engine.loaded,
                "replica": serve.get_replica_context().replica_id.unique_id, "pid": os.getpid(),
                "queued": self.gauges.queued, "running": self.gauges.running}

    async def check_health(self) -> None:
        if self._pool._shutdown:  # noqa: SLF001 - the engine thread is gone: let Serve replace this replica
            raise RuntimeError("generator engine thread is shut down")
