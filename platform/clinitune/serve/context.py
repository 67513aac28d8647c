"""Request preparation shared by chat and completions: limits, adapter system prompt, PHI in prompts,
retrieval, citations, and the job sent to the generator.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from clinitune.rag.prompt import augment_messages, augment_prompt, citations, query_of, queries_of
from clinitune.rag.retrieve import Hit
from clinitune.serve.adapters import AdapterRef
from clinitune.serve.audit import AuditRecord
from clinitune.serve.config import ServeArgs
from clinitune.serve.generator import GenJob
from clinitune.serve.guard import PhiGuard
from clinitune.serve.protocol import ApiError, ChatCompletionRequest, CompletionRequest, RetrievalOptions
from clinitune.serve.retry import RetriesExhausted, retry_headers, with_retries


@dataclass
class Prepared:
    job: GenJob
    extras: dict[str, Any] = field(default_factory=dict)  # response fields beyond OpenAI's: adapter, citations, retrieval


def check_limits(cfg: ServeArgs, req: ChatCompletionRequest | CompletionRequest) -> None:
    limit = req.limit() if isinstance(req, ChatCompletionRequest) else req.max_tokens
    if limit is not None and limit > cfg.model.max_tokens_limit:
        raise ApiError(400, f"max_tokens is {limit}, over this server's limit of {cfg.model.max_tokens_limit}. "
                            f"Ask for at most {cfg.model.max_tokens_limit} tokens.", param="max_tokens", code="invalid_value")
    if req.stop and len(req.stop) > cfg.limits.max_stop:
        raise ApiError(400, f"At most {cfg.limits.max_stop} stop sequences are allowed; got {len(req.stop)}.",
                       param="stop", code="invalid_value")
    if isinstance(req, ChatCompletionRequest) and len(req.messages) > cfg.limits.max_messages:
        raise ApiError(400, f"At most {cfg.limits.max_messages} messages are allowed; got {len(req.messages)}.",
                       param="messages", code="invalid_value")


def code_system_plan(cfg: ServeArgs, asked: str | None) -> str | None:
    """The code system a request decodes under: its ``code_system`` extension, else the server default.

    A request may name a built-in code system, the server's configured one, or ``none`` (off);
    never a file path (a client must not make the server read files).
    """
    if asked is None:
        return cfg.decoding.code_system
    if asked == "none":
        return None
    from clinitune.terminology.systems import BUILTIN

    allowed = sorted({*BUILTIN, *([cfg.decoding.code_system] if cfg.decoding.code_system else [])})
    if asked not in allowed:
        raise ApiError(400, f"Unknown code_system '{asked[:64]}'. Use one of: {', '.join(allowed)}, or 'none' to decode "
                            "without the terminology constraint.", param="code_system", code="invalid_value")
    return asked


def retrieval_plan(cfg: ServeArgs, opts: RetrievalOptions | None, chat: bool) -> tuple[bool, str, int, bool]:
    """(enabled, kb, top_k, kb named explicitly) for a request."""
    r = cfg.retrieval
    opts = opts or RetrievalOptions()
    enabled = opts.enabled if opts.enabled is not None else (r.enabled if chat else r.for_completions)
    if opts.kb is not None and opts.enabled is None:
        enabled = True  # naming a knowledge base asks for retrieval
    top_k = opts.top_k or r.top_k
    if top_k > r.max_top_k:
        raise ApiError(400, f"retrieval.top_k is {top_k}, over this server's limit of {r.max_top_k}.",
                       param="retrieval.top_k", code="invalid_value")
    return enabled, opts.kb or r.default_kb, top_k, opts.kb is not None


async def _retrieve(cfg: ServeArgs, retriever, kb: str, queries: list[str], top_k: int) -> dict[str, Any]:
    """The retriever's answer, retried like generation when its replica is lost (a search has no side effects)."""
    try:
        return await with_retries(lambda _: retriever.retrieve.remote(kb, queries, top_k), cfg.retries, time.monotonic())
    except RetriesExhausted as err:
        raise ApiError(503, f"The retrieval replica was lost and {err.attempts} attempt(s) did not complete within the "
                            "retry budget. Retry the request, or send retrieval.enabled=false.", param="retrieval",
                       code="retries_exhausted", headers=retry_headers(cfg.retries.retry_after_s)) from None


async def prepare(cfg: ServeArgs, req: ChatCompletionRequest | CompletionRequest, ref: AdapterRef, guard: PhiGuard,
                  retriever, rec: AuditRecord) -> Prepared:
    """Everything between an authorised, validated request and the generator."""
    chat = isinstance(req, ChatCompletionRequest)
    check_limits(cfg, req)
    system = code_system_plan(cfg, req.code_system)
    if chat:
        messages = req.plain_messages()
        if ref.system_prompt and not any(m["role"] == "system" for m in messages):
            messages = [{"role": "system", "content": ref.system_prompt}, *messages]
    else:
        messages = [{"role": "user", "content": req.prompt}]
    try:
        messages, found = guard.prompt(messages)
    except ApiError:
        rec.phi_action = "prompt_refused"
        raise
    rec.phi_prompt = found
    if found:
        rec.phi_action = "prompt_redacted"
    query = query_of(messages)

    extras: dict[str, Any] = {"adapter": ref.public()}
    enabled, kb, top_k, explicit = retrieval_plan(cfg, req.retrieval, chat)
    hits: list[Hit] = []
    if enabled:
        if retriever is None:
            raise ApiError(400, "Retrieval is turned off on this server (retrieval.deploy: false). Send retrieval.enabled=false.",
                           param="retrieval", code="retrieval_unavailable")
        result = await _retrieve(cfg, retriever, kb, queries_of(messages), top_k)  # one query per problem of a note
        err = result.get("error")
        if err and (explicit or err["status"] != 404):
            raise ApiError(err["status"], err["message"], param=err["param"], code=err["code"])
        if err:  # the server's default knowledge base does not exist (yet): answer without retrieval, and say so
            extras["retrieval"] = {"kb": kb, "status": "knowledge_base_not_found"}
        else:
            hits = [Hit(**h) for h in result["hits"]]
            extras["retrieval"] = {"kb": kb, "status": "ok", "top_k": top_k}
            cites = citations(hits, kb, cfg.retrieval.snippet_chars)
            for c in cites:
                c["snippet"] = guard.snippet(c["snippet"])
            extras["citations"] = cites
            rec.kb = kb
            rec.citations = len(cites)
    else:
        extras["retrieval"] = {"status": "off"}

    extras["constraint"] = {"code_system": system}
    r = cfg.retrieval
    if chat:
        messages = augment_messages(messages, hits, r.context_chars)
        job_messages, job_prompt, max_tokens = messages, None, req.limit()
    else:
        job_messages, job_prompt, max_tokens = None, augment_prompt(query, hits, r.context_chars), req.limit()
    from clinitune.constrain.registry import codes_spec

    job = GenJob(key=ref.key, adapter_path=ref.path, messages=job_messages, prompt=job_prompt, max_tokens=max_tokens,
                 temperature=req.temperature, top_p=req.top_p, stop=req.stop_list(), seed=req.seed,
                 constraint=codes_spec(system))
    return Prepared(job, extras)
