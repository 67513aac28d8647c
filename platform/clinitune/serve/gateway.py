"""The HTTP ingress: OpenAI-compatible endpoints with authentication, limits, PHI guard, audit and metrics.

Order of checks: API key (401), rate limit (429, counted cluster-wide by the coordinator), body size
(413), JSON and parameters (400), Idempotency-Key (replay, 409 in use, 422 reused for another
request), model exists (404), key may use it (403), adapter servable (503), then retrieval and
generation. Every request, whatever its outcome, leaves one audit record and one set of metrics.
User mistakes are 4xx in OpenAI's error format; an unexpected failure is a 500 naming the request
id, and is logged by exception type only (never request text).

Faults and load (:mod:`clinitune.serve.retry`): a generation whose generator replica is lost before
any output is retried (bounded attempts, jittered backoff, a deadline), on another replica or the
restarted one; retries spent give 503 with ``retry-after``. A stream that loses its replica after
output was sent ends with an OpenAI-shaped error event. A full generator queue is answered at
once with 503 (or 429) and ``retry-after`` / ``retry-after-ms``.

(No ``from __future__ import annotations`` here: FastAPI must see real types on the route methods.)
"""

import asyncio
import json
import logging
import time
import uuid
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from ray import serve
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError
from starlette.exceptions import HTTPException as StarletteHTTPException

from clinitune.serve.adapters import AdapterCatalog, AdapterRef
from clinitune.serve.audit import AuditLog, AuditRecord
from clinitune.serve.auth import KeyStore, Principal
from clinitune.serve.config import ServeArgs
from clinitune.serve.context import Prepared, prepare
from clinitune.serve.coordinator import (IDEMPOTENCY_HEADER, CoordinatorClient, CoordinatorUnavailable, idempotency_scope,
                                         request_fingerprint, valid_idempotency_key)
from clinitune.serve.guard import PhiGuard
from clinitune.serve.metrics import Metrics
from clinitune.serve.protocol import (ApiError, ChatCompletionRequest, CompletionRequest, chat_chunk, chat_response,
                                      completion_chunk, completion_response, new_id, parse_request, sse,
                                      usage)
from clinitune.serve.retry import RetriesExhausted, replica_lost, retry_headers, with_retries

log = logging.getLogger("ray.serve")  # replica logs: exception types and places only, never messages


def where(err: BaseException) -> str:
    """``TypeName at file.py:line`` of the innermost frame: enough to debug, no request text."""
    tb, place = err.__traceback__, ""
    while tb is not None:
        place = f"{tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
        tb = tb.tb_next
    cause = getattr(err, "cause", None)  # a Ray task error: name what failed in the other replica
    inner = f" (caused by {type(cause).__name__})" if isinstance(cause, BaseException) else ""
    return (f"{type(err).__name__} at {place}" if place else type(err).__name__) + inner


api = FastAPI(title="Clinitune", docs_url=None, redoc_url=None, openapi_url=None)


def error_response(err: ApiError, request_id: str | None = None) -> JSONResponse:
    headers = dict(err.headers)
    if request_id:
        headers["x-request-id"] = request_id
    return JSONResponse(err.body(), status_code=err.status, headers=headers)


@api.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 404:
        return error_response(ApiError(404, f"Unknown endpoint {request.method} {request.url.path}. "
                                            "See /v1/models, /v1/chat/completions and /v1/completions.", code="unknown_url"))
    return error_response(ApiError(exc.status_code, str(exc.detail), code="http_error"))


@serve.deployment(name="Gateway")
@serve.ingress(api)
class Gateway:
    def __init__(self, args: dict[str, Any], generator, retriever=None, coordinator=None):
        self.cfg = ServeArgs.model_validate(args)
        self.generator = generator
        self.retriever = retriever
        try:
            rid = serve.get_replica_context().replica_id
            self.replica, actor = rid.unique_id, rid.to_full_id_str()
        except Exception:  # noqa: BLE001 - constructed outside a Serve replica
            self.replica = actor = "local"
        self.shared = CoordinatorClient(coordinator, self.cfg.idempotency, f"{actor}|{uuid.uuid4().hex[:8]}")
        self.keys = KeyStore(self.cfg.auth)
        self.catalog = AdapterCatalog(self.cfg)
        self.guard = PhiGuard(self.cfg.phi_guard)
        self.audit = AuditLog(self.cfg.audit_path())
        self.metrics = Metrics()
        self._inflight = 0  # generation requests sent to the generators and not yet answered (queued or running)
        self._full_at: int | None = None  # _inflight when the generators' queue was last found full
        self._full_since = 0.0
        self._refresher: asyncio.Task | None = None

    # -- background ------------------------------------------------------------------------------
    def _ensure_refresher(self) -> None:
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.adapters.refresh_s)
            try:
                await asyncio.to_thread(self.catalog.refresh)
            except Exception as err:  # noqa: BLE001 - keep polling
                log.warning("adapter catalog refresh failed: %s", type(err).__name__)

    # -- checks ----------------------------------------------------------------------------------
    async def _authenticate(self, request: Request, rec: AuditRecord) -> Principal:
        principal = self.keys.authenticate(request.headers.get("authorization"))
        if principal is None:
            raise ApiError(401, "Missing or invalid API key. Send 'Authorization: Bearer <key>'.", code="invalid_api_key")
        rec.key_id = principal.key_id
        wait = await self.shared.take(principal.key_id, principal.requests_per_minute, principal.burst)
        if wait > 0:
            self.metrics.rejected("rate_limited")
            raise ApiError(429, f"Rate limit of {principal.requests_per_minute} requests per minute reached for key "
                                f"'{principal.key_id}'. Retry after {wait:.1f} s.", code="rate_limit_exceeded",
                           headers=retry_headers(wait))
        return principal

    async def _idempotency(self, request: Request, principal: Principal, endpoint: str, body: bytes,
                           rec: AuditRecord) -> tuple[str | None, Response | None]:
        """(scope this request now holds, or None; the first answer to replay, or None)."""
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            return None, None
        if not valid_idempotency_key(key):
            raise ApiError(400, "The Idempotency-Key header must be 1-255 printable ASCII characters.",
                           param="Idempotency-Key", code="invalid_idempotency_key")
        scope = idempotency_scope(principal.key_id, key)
        try:
            got = await self.shared.begin(scope, request_fingerprint(endpoint, body))
        except CoordinatorUnavailable:
            self.metrics.rejected("coordinator_unavailable")
            raise ApiError(503, "Idempotency keys cannot be checked right now. Retry shortly with the same key.",
                           code="idempotency_unavailable", headers=retry_headers(1.0)) from None
        state = got["state"]
        rec.idempotency = {"new": "new", "done": "replayed", "running": "in_use", "mismatch": "mismatch"}[state]
        if state == "new":
            return scope, None
        if state == "mismatch":
            raise ApiError(422, "This Idempotency-Key was already used for a different request (another body or "
                                "endpoint). Use a new key for a new request.", param="Idempotency-Key",
                           code="idempotency_key_reused")
        if state == "running":
            self.metrics.rejected("idempotency_in_use")
            raise ApiError(409, "A request with this Idempotency-Key is still in progress. Retry later with the same "
                                "key to get its answer.", param="Idempotency-Key", code="idempotency_key_in_use",
                           headers=retry_headers(got["retry_after_s"]))
        first = got["response"]
        self.metrics.replayed()
        rec.status = first["status"]
        return None, Response(first["body"], status_code=first["status"], media_type=first["media_type"],
                              headers={**first["headers"], "idempotent-replayed": "true"})

    async def _body(self, request: Request) -> bytes:
        limit = self.cfg.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"The request body is {int(declared)} bytes, over the limit of {limit}. Send less text.",
                           code="request_too_large")
        body = await request.body()
        if len(body) > limit:
            raise ApiError(413, f"The request body is {len(body)} bytes, over the limit of {limit}. Send less text.",
                           code="request_too_large")
        return body

    def _resolve(self, model: str, principal: Principal, rec: AuditRecord) -> AdapterRef:
        ref = self.catalog.resolve(model)
        if ref is None:
            raise ApiError(404, f"The model '{model[:128]}' does not exist. GET /v1/models lists the models you can use.",
                           param="model", code="model_not_found")
        rec.model = model
        if not principal.may_use(model):
            raise ApiError(403, f"API key '{principal.key_id}' may not use model '{model}'.", param="model",
                           code="model_not_allowed")
        rec.adapter, rec.adapter_version = ref.name, ref.version
        if ref.problem:
            raise ApiError(503, f"Model '{model}' cannot be served right now: {ref.problem}.", param="model",
                           code="adapter_unavailable")
        return ref

    def _finish(self, rec: AuditRecord, started: float) -> None:
        rec.latency_ms = (time.perf_counter() - started) * 1000
        try:
            self.audit.write(rec)
        except OSError as err:
            log.error("audit log write failed: %s", type(err).__name__)
        self.metrics.record(model=rec.model, endpoint=rec.endpoint, status=rec.status, latency_s=rec.latency_ms / 1000,
                            prompt_tokens=rec.prompt_tokens, completion_tokens=rec.completion_tokens,
                            error_code=rec.error_code)

    # -- plain endpoints -------------------------------------------------------------------------
    @api.get("/health")
    async def health(self) -> dict:
        return {"status": "ok"}

    @api.get("/ready")
    async def ready(self) -> JSONResponse:
        self._ensure_refresher()
        checks: dict[str, Any] = {}
        ok = True
        try:
            info = await asyncio.wait_for(self.generator.info.remote(), timeout=10)
            checks["generator"] = {"ok": True, "loaded_adapters": len(info["loaded_adapters"])}
        except Exception as err:  # noqa: BLE001
            ok, checks["generator"] = False, {"ok": False, "error": type(err).__name__}
        if self.retriever is not None:
            try:
                kbs = await asyncio.wait_for(self.retriever.knowledge_bases.remote(), timeout=10)
                checks["retriever"] = {"ok": True, "knowledge_bases": kbs}
            except Exception as err:  # noqa: BLE001
                ok, checks["retriever"] = False, {"ok": False, "error": type(err).__name__}
        try:  # shared limits degrade to per-replica ones without it: reported, not a reason to stop traffic
            await asyncio.wait_for(self.shared.handle.stats.remote(), timeout=5)
            checks["coordinator"] = {"ok": True}
        except Exception as err:  # noqa: BLE001
            checks["coordinator"] = {"ok": False, "error": type(err).__name__}
        prod = self.catalog.resolve(self.cfg.model.name)
        checks["production"] = prod.public() if prod and not prod.problem else {"problem": prod.problem if prod else None}
        return JSONResponse({"status": "ready" if ok else "not_ready", "checks": checks}, status_code=200 if ok else 503)

    @api.get("/metrics")
    async def prometheus(self) -> Response:
        return Response(self.metrics.exposition(), media_type="text/plain; version=0.0.4")

    @api.post("/admin/reload")
    async def reload(self) -> dict:
        """Re-read the registry now (the registry POSTs here after a promotion or rollback; the body is ignored)."""
        changed = await asyncio.to_thread(self.catalog.refresh)
        prod = self.catalog.resolve(self.cfg.model.name)
        return {"changed": changed, "production": prod.public() if prod and not prod.problem else None}

    @api.get("/v1/models")
    async def models(self, request: Request) -> JSONResponse:
        self._ensure_refresher()
        rec, started = AuditRecord(new_id("req"), "models", gateway=self.replica), time.perf_counter()
        try:
            principal = await self._authenticate(request, rec)
            data = []
            for mid in self.catalog.model_ids():
                ref = self.catalog.resolve(mid)
                if principal.may_use(mid) and ref is not None:
                    data.append({"id": mid, "object": "model", "created": 0, "owned_by": "clinitune",
                                 "adapter": ref.public() if not ref.problem else None})
            return JSONResponse({"object": "list", "data": data})
        except ApiError as err:
            rec.status, rec.error_code = err.status, err.code
            return error_response(err, rec.request_id)
        finally:
            self._finish(rec, started)

    # -- generation ------------------------------------------------------------------------------
    @api.post("/v1/chat/completions")
    async def chat(self, request: Request) -> Response:
        return await self._generate(request, ChatCompletionRequest, "chat")

    @api.post("/v1/completions")
    async def completions(self, request: Request) -> Response:
        return await self._generate(request, CompletionRequest, "completions")

    async def _generate(self, request: Request, model_cls, endpoint: str) -> Response:
        self._ensure_refresher()
        rid = new_id("chatcmpl" if endpoint == "chat" else "cmpl")
        rec, started = AuditRecord(rid, endpoint, gateway=self.replica), time.perf_counter()
        streaming = False
        scope = None  # the Idempotency-Key record this request holds until it completes or fails
        try:
            principal = await self._authenticate(request, rec)
            body = await self._body(request)
            req = parse_request(body, model_cls)
            rec.stream = req.stream
            scope, replay = await self._idempotency(request, principal, endpoint, body, rec)
            if replay is not None:
                rec.model = req.model  # a model id the first request was served under
                return replay
            ref = self._resolve(req.model, principal, rec)
            self._shed()
            prep = await prepare(self.cfg, req, ref, self.guard, self.retriever, rec)
            handle = self.generator.options(multiplexed_model_id=ref.key)
            if req.stream:
                gen, first = await self._open_stream(handle, prep.job, endpoint, rec, started)
                streaming = True
                include_usage = bool(req.stream_options and req.stream_options.include_usage)
                out = self._stream(gen, first, prep, req.model, rid, endpoint, include_usage, rec, started, scope)
                scope = None  # the stream completes or releases it
                return StreamingResponse(out, media_type="text/event-stream", headers={"x-request-id": rid})
            results = await asyncio.gather(*(self._call(handle, job, endpoint, rec, started) for job in prep.jobs))  # a job per choice
            for result in results:
                if "error" in result:
                    raise self._generator_error(result)
            resp = JSONResponse(self._complete(results, prep, req.model, rid, endpoint, rec), headers={"x-request-id": rid})
            if scope is not None:
                await self.shared.complete(scope, {"status": resp.status_code, "media_type": "application/json",
                                                   "headers": {"x-request-id": rid}, "body": resp.body.decode()})
                scope = None
            return resp
        except ApiError as err:
            rec.status, rec.error_code = err.status, err.code
            return error_response(err, rid)
        except Exception as err:  # noqa: BLE001 - never a traceback (or request text) to the client
            log.error("request %s failed: %s", rid, where(err))
            rec.status, rec.error_code = 500, "internal_error"
            return error_response(ApiError(500, f"Internal error while handling request {rid}.", code="internal_error"), rid)
        finally:
            if scope is not None:
                self.shared.release_soon(scope)
            if not streaming:
                self._finish(rec, started)

    # -- calling the generator: retries, backpressure --------------------------------------------
    SHED_WINDOW_S = 1.0

    def _track(self, delta: int) -> None:
        self._inflight += delta
        self.metrics.generator_inflight(delta)

    def _overloaded(self, status: int, wait: float) -> ApiError:
        self.metrics.rejected("queue_full")
        return ApiError(status, "The server is at capacity: the model's request queue is full. Retry after the time in "
                                "retry-after.", code="server_overloaded", headers=retry_headers(wait))

    def _shed(self) -> None:
        """Turn a request away before any work when the generators' queue was full moments ago at this load.

        Serve's router rejects a request only once its own loop gets to it, and under a flood that loop
        is the busiest place in the gateway (every queued request keeps probing for a free replica):
        a rejection could take seconds. The router's last answer is kept instead — the number of
        requests this gateway had outstanding when it said "full" — and for ``SHED_WINDOW_S`` after it
        a request arriving with at least that many outstanding is answered at once. With fewer outstanding
        (requests finished), or once the second is over (replicas may have been added), the router decides again."""
        if self._full_at is not None and self._inflight >= self._full_at \
                and time.monotonic() - self._full_since < self.SHED_WINDOW_S:
            bp = self.cfg.deployments.generator.backpressure
            raise self._overloaded(bp.status_code, bp.retry_after_s)

    def _lost(self, endpoint: str, rid: str, attempt: int, how: str) -> None:
        log.warning("request %s: generator replica %s during attempt %d", rid, how, attempt)
        self.metrics.retried(endpoint, how)

    async def _retrying(self, attempt, endpoint: str, rec: AuditRecord, started: float):
        """Run ``attempt(n)`` under the retry policy; map what cannot be answered to a retryable 503/429."""
        self._track(1)
        try:
            return await with_retries(attempt, self.cfg.retries, started, clock=time.perf_counter,
                                      on_retry=lambda n, how: self._lost(endpoint, rec.request_id, n, how))
        except RetriesExhausted as err:
            rec.attempts = err.attempts
            self.metrics.rejected("retries_exhausted")
            raise ApiError(503, f"The model replica serving this request was lost and {err.attempts} attempt(s) did not "
                                "complete within the retry budget. Retry the request.", code="retries_exhausted",
                           headers=retry_headers(self.cfg.retries.retry_after_s)) from None
        except BackPressureError as err:
            self._full_at, self._full_since = self._inflight - 1, time.monotonic()  # outstanding besides this one
            wait = err.retry_after_s if err.retry_after_s is not None else self.cfg.deployments.generator.backpressure.retry_after_s
            raise self._overloaded(err.status_code, wait) from None
        except DeploymentUnavailableError:
            raise ApiError(503, "The model deployment is unavailable (it failed to start). Retry later.",
                           code="model_unavailable", headers=retry_headers(self.cfg.retries.retry_after_s)) from None
        finally:
            self._track(-1)

    async def _call(self, handle, job, endpoint: str, rec: AuditRecord, started: float) -> dict:
        async def attempt(n: int) -> dict:
            rec.attempts = n
            resp = handle.generate.remote(job)
            try:
                return await resp
            except asyncio.CancelledError:
                resp.cancel()
                raise

        return await self._retrying(attempt, endpoint, rec, started)

    async def _open_stream(self, handle, job, endpoint: str, rec: AuditRecord, started: float):
        """(generator, its first item): a stream is retried like a whole request until its first delta."""
        async def attempt(n: int):
            rec.attempts = n
            gen = handle.options(stream=True).stream.remote(job)
            try:
                first = await gen.__anext__()
            except BaseException:
                gen.cancel()
                raise
            if "error" in first:
                raise self._generator_error(first)
            return gen, first

        return await self._retrying(attempt, endpoint, rec, started)

    @staticmethod
    def _generator_error(item: dict) -> ApiError:
        e = item["error"]
        return ApiError(e["status"], e["message"], param=e.get("param"), code=e["code"])

    def _guard_extras(self, prep: Prepared, counts: dict[str, int], blocked: bool, rec: AuditRecord) -> dict[str, Any]:
        rec.phi_output = dict(counts)
        extras = dict(prep.extras)
        if blocked:
            rec.phi_action = "output_blocked"
            extras["phi_guard"] = {"action": "blocked", "counts": dict(counts)}
        elif counts:
            rec.phi_action = rec.phi_action or "output_redacted"
            extras["phi_guard"] = {"action": "redacted", "counts": dict(counts)}
        return extras

    def _complete(self, results: list[dict], prep: Prepared, model: str, rid: str, endpoint: str, rec: AuditRecord) -> dict:
        from collections import Counter

        from clinitune.serve.logprobs import chat_logprobs, completion_logprobs

        choices, counts, blocked_any = [], Counter(), False
        for result in results:  # every choice passes the PHI guard; its token texts only when the guard left it alone
            guarded = self.guard.output(result["text"])
            counts.update(guarded.counts)
            blocked_any |= guarded.blocked
            finish = "content_filter" if guarded.blocked else result["finish_reason"]
            clean = not guarded.blocked and not guarded.counts
            if endpoint == "chat":
                lp = chat_logprobs(result.get("tokens") or []) if prep.logprobs is not None and clean else None
                choices.append({"message": {"role": "assistant", "content": guarded.text}, "logprobs": lp, "finish_reason": finish})
            else:
                echoed = result.get("prompt_tokens_detail") if prep.echo else None
                text = (result.get("prompt_text", "") if prep.echo else "") + guarded.text
                lp = (completion_logprobs(echoed, result.get("tokens") or [], bool(prep.logprobs))
                      if prep.logprobs is not None and clean else None)
                choices.append({"text": text, "logprobs": lp, "finish_reason": finish})
        prompt_tokens = sum(r["prompt_tokens"] for r in results[:: prep.n])  # once per prompt, not per choice
        completion_tokens = sum(r["completion_tokens"] for r in results)
        rec.prompt_tokens, rec.completion_tokens, rec.finish_reason = prompt_tokens, completion_tokens, choices[0]["finish_reason"]
        extras = self._guard_extras(prep, dict(counts), blocked_any, rec)
        build = chat_response if endpoint == "chat" else completion_response
        return build(rid, model, "", "", prompt_tokens, completion_tokens, extras, choices=choices)

    async def _stream(self, gen, first: dict, prep: Prepared, model: str, rid: str, endpoint: str, include_usage: bool,
                      rec: AuditRecord, started: float, scope: str | None) -> AsyncIterator[str]:
        created = int(time.time())
        chat = endpoint == "chat"
        sg = self.guard.stream()
        sent: list[str] = []  # what the client got, kept for repeats of its Idempotency-Key
        self._track(1)

        def chunk(text: str | None, finish: str | None, extras: dict | None = None, totals=None) -> str:
            if chat:
                delta = {} if text is None else {"content": text}
                return sse(chat_chunk(rid, model, created, delta, finish, extras, totals))
            return sse(completion_chunk(rid, model, created, text or "", finish, extras, totals))

        def emit(event: str) -> str:
            if scope is not None:
                sent.append(event)
            return event

        idle = self.cfg.retries.stream_idle_timeout_s
        try:
            if chat:
                yield emit(sse(chat_chunk(rid, model, created, {"role": "assistant", "content": ""}, None, prep.extras)))
            else:
                yield emit(chunk("", None, prep.extras))
            item: dict | None = first
            while item is not None:
                safe = sg.feed(item["text"])
                if sg.blocked:
                    rec.finish_reason = "content_filter"
                    break
                if safe:
                    yield emit(chunk(safe, None))
                if item["finish_reason"]:
                    rec.finish_reason = item["finish_reason"]
                    rec.prompt_tokens, rec.completion_tokens = item["prompt_tokens"], item["completion_tokens"]
                    break
                item = await asyncio.wait_for(gen.__anext__(), idle)  # never a hang: a silent replica ends the stream
            tail = sg.finish() if not sg.blocked else ""
            if sg.blocked:
                rec.finish_reason = "content_filter"
                gen.cancel()
            final_extras = self._guard_extras(prep, dict(sg.counts), sg.blocked, rec)
            final_extras = {k: v for k, v in final_extras.items() if k == "phi_guard"}
            if tail:
                yield emit(chunk(tail, None))
            yield emit(chunk(None, rec.finish_reason, final_extras or None))
            if include_usage:
                totals = usage(rec.prompt_tokens, rec.completion_tokens)
                body = chat_chunk(rid, model, created, {}, None, None, totals) if chat else \
                    completion_chunk(rid, model, created, "", None, None, totals)
                body["choices"] = []
                yield emit(sse(body))
            if scope is not None:  # kept before [DONE]: a client that repeats at once finds the answer
                await self.shared.complete(scope, {"status": 200, "media_type": "text/event-stream",
                                                   "headers": {"x-request-id": rid}, "body": "".join(sent) + sse("[DONE]")})
                scope = None
            yield sse("[DONE]")
        except asyncio.CancelledError:  # the client went away
            rec.status, rec.error_code = 499, "client_closed_request"
            gen.cancel()
            raise
        except Exception as err:  # noqa: BLE001 - the stream has started: report the error in-band, then end it
            gen.cancel()
            how = replica_lost(err)
            if how is not None or isinstance(err, asyncio.TimeoutError):
                what = f"was lost ({how})" if how else f"sent nothing for {idle:.0f} s"
                log.error("stream %s: generator replica %s after output was sent", rid, what)
                rec.status, rec.error_code = 503, "stream_interrupted"
                yield sse(json.dumps(ApiError(503, f"The model replica serving this stream {what} after part of the "
                                                   "answer was sent; the answer is incomplete. Retry the request.",
                                              code="stream_interrupted").body()))
            else:
                log.error("stream %s failed: %s", rid, where(err))
                rec.status, rec.error_code = 500, "internal_error"
                yield sse(json.dumps(ApiError(500, f"Internal error while streaming request {rid}.", code="internal_error").body()))
        finally:
            if scope is not None:
                self.shared.release_soon(scope)
            self._track(-1)
            self._finish(rec, started)
