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
from clinitune.serve.logprobs import wants_logprobs
from clinitune.serve.protocol import ApiError, ChatCompletionRequest, CompletionRequest, RetrievalOptions
from clinitune.serve.retry import RetriesExhausted, retry_headers, with_retries


@dataclass
class Prepared:
    job: GenJob
    extras: dict[str, Any] = field(default_factory=dict)  # response fields beyond OpenAI's: adapter, citations, retrieval
    jobs: list[GenJob] = field(default_factory=list)  # one per choice (prompt-major: prompt i, sample j -> i * n + j)
    logprobs: int | None = None  # alternatives per token the response reports (None: no logprobs)
    echo: bool = False
    n: int = 1  # choices per prompt

    def __post_init__(self):
        if not self.jobs:
            self.jobs = [self.job]


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
    constraint, system = output_constraint(req, system)
    prompts = [] if chat else req.prompts()
    token_prompts = any(not isinstance(p, str) for p in prompts)
    if token_prompts and cfg.phi_guard.prompt != "off":
        raise ApiError(400, "This server checks prompts for PHI, which needs text: send the prompt as text rather than token "
                            "ids (lm-evaluation-harness: tokenized_requests=False).", param="prompt", code="invalid_value")
    if chat:
        messages = req.plain_messages()
        if ref.system_prompt and not any(m["role"] == "system" for m in messages):
            messages = [{"role": "system", "content": ref.system_prompt}, *messages]
    elif len(prompts) > 1 or token_prompts:  # several prompts or token ids: plain completions, no retrieval
        if req.retrieval is not None and req.retrieval.enabled:
            raise ApiError(400, "Retrieval needs a single text prompt; send one prompt or retrieval.enabled=false.",
                           param="retrieval", code="invalid_value")
        return _plain_completions(cfg, req, ref, guard, rec, prompts, constraint, system)
    else:
        messages = [{"role": "user", "content": prompts[0]}]
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

    extras["constraint"] = _constraint_extra(req, system)
    r = cfg.retrieval
    if chat:
        messages = augment_messages(messages, hits, r.context_chars)
        job_messages, job_prompt, max_tokens = messages, None, req.limit()
    else:
        job_messages, job_prompt, max_tokens = None, augment_prompt(query, hits, r.context_chars), req.limit()
    job = GenJob(key=ref.key, adapter_path=ref.path, messages=job_messages, prompt=job_prompt, max_tokens=max_tokens,
                 temperature=req.temperature, top_p=req.top_p, stop=req.stop_list(), seed=req.seed,
                 constraint=constraint, **_token_options(req))
    return Prepared(job, extras, jobs=_per_choice(job, req.n), logprobs=wants_logprobs(req),
                    echo=bool(getattr(req, "echo", False)), n=req.n)


def output_constraint(req, system: str | None) -> tuple[str, str | None]:
    """(constraint spec, code system): ``response_format`` JSON, else the code system ('' = none).

    A JSON format replaces the server's default code system; asking for both is a 400, and so is a
    schema llguidance cannot compile (the parameter named).
    """
    from clinitune.constrain.registry import codes_spec, json_spec

    fmt = req.response_format
    if fmt is None or not fmt.constrained():
        return codes_spec(system), system
    if req.code_system not in (None, "none"):
        raise ApiError(400, "response_format and code_system cannot be combined; send one of them.",
                       param="response_format", code="invalid_value")
    from clinitune.constrain.json_schema import SchemaError, compile_grammar

    try:
        compile_grammar(fmt.schema_dict())
    except SchemaError as err:
        raise ApiError(400, f"Invalid schema for response_format: {err}. Send a JSON schema (draft 2020-12 subset).",
                       param="response_format.json_schema.schema", code="invalid_schema") from None
    return json_spec(fmt.schema_dict()), None


def _constraint_extra(req, system: str | None) -> dict[str, Any]:
    fmt = req.response_format
    out: dict[str, Any] = {"code_system": system}
    if fmt is not None and fmt.constrained():
        out["response_format"] = fmt.type
    return out


def _token_options(req) -> dict[str, Any]:
    return {"logprobs": wants_logprobs(req), "echo": bool(getattr(req, "echo", False)),
            "presence_penalty": req.presence_penalty, "frequency_penalty": req.frequency_penalty}


def _per_choice(job: GenJob, n: int) -> list[GenJob]:
    """``n`` jobs for one prompt: choice j samples with seed + j (the same request and seed answer the same)."""
    from dataclasses import replace

    return [job if j == 0 else replace(job, seed=None if job.seed is None else job.seed + j) for j in range(n)]


def _plain_completions(cfg: ServeArgs, req: CompletionRequest, ref: AdapterRef, guard: PhiGuard, rec: AuditRecord,
                       prompts: list, constraint: str, system: str | None) -> Prepared:
    """Several prompts and/or token-id prompts: one job per prompt and choice, no retrieval."""
    jobs: list[GenJob] = []
    for p in prompts:
        text, ids = (p, None) if isinstance(p, str) else (None, list(p))
        if text is not None:
            try:
                msgs, found = guard.prompt([{"role": "user", "content": text}])
            except ApiError:
                rec.phi_action = "prompt_refused"
                raise
            if found:
                rec.phi_prompt = {**(rec.phi_prompt or {}), **found}
                rec.phi_action = "prompt_redacted"
            text = msgs[0]["content"]
        job = GenJob(key=ref.key, adapter_path=ref.path, messages=None, prompt=text, prompt_ids=ids, max_tokens=req.limit(),
                     temperature=req.temperature, top_p=req.top_p, stop=req.stop_list(), seed=req.seed,
                     constraint=constraint, **_token_options(req))
        jobs.extend(_per_choice(job, req.n))
    extras = {"adapter": ref.public(), "retrieval": {"status": "off"}, "constraint": _constraint_extra(req, system)}
    return Prepared(jobs[0], extras, jobs=jobs, logprobs=wants_logprobs(req), echo=req.echo, n=req.n)
