"""Fault and load handling without Ray: which generator failures are retried and how, the idempotency
store, token buckets with a burst, and their config checks."""

from __future__ import annotations

import asyncio
import json
import random
import time

import pytest
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayTaskError

from clinitune.config import validate_config
from clinitune.errors import ConfigError
from clinitune.serve.auth import RateLimiter
from clinitune.serve.config import IdempotencySettings, RetrySettings, ServeArgs
from clinitune.serve.coordinator import IdempotencyStore, idempotency_scope, request_fingerprint, valid_idempotency_key
from clinitune.serve.retry import RetriesExhausted, backoff_s, replica_lost, with_retries


# -- retries -----------------------------------------------------------------------------------
def test_only_a_lost_replica_counts_as_retryable():
    assert replica_lost(ActorDiedError()) == "died"
    assert replica_lost(ActorUnavailableError("gone", None)) == "unavailable"
    assert replica_lost(RayTaskError("generate", "tb", ActorDiedError())) == "died"  # wrapped by a chained call
    for err in (ValueError("bad"), RuntimeError("x"), RayTaskError("generate", "tb", ValueError("user bug")),
                asyncio.TimeoutError()):
        assert replica_lost(err) is None


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, s: float) -> None:
        self.now += s


def _run(coro):
    return asyncio.run(coro)


def test_a_lost_replica_is_retried_with_jittered_backoff_and_answered():
    clock, calls, lost = Clock(), [], []

    async def call(n):
        calls.append((n, clock.now))
        if n < 3:
            raise ActorDiedError() if n == 1 else ActorUnavailableError("unreachable", None)
        return {"text": "ok"}

    policy = RetrySettings(max_attempts=3, backoff_initial_s=0.5, backoff_max_s=0.6, deadline_s=60)
    out = _run(with_retries(call, policy, 0.0, clock=clock, sleep=clock.sleep, on_retry=lambda n, how: lost.append((n, how)),
                            rng=random.Random(0)))
    assert out == {"text": "ok"} and [n for n, _ in calls] == [1, 2, 3]
    assert lost == [(1, "died"), (2, "unavailable")]
    gaps = [b - a for (_, a), (_, b) in zip(calls, calls[1:])]
    assert 0 <= gaps[0] <= 0.5 and 0 <= gaps[1] <= 0.6  # full jitter under the (capped) exponential bound
    rng = random.Random(1)
    draws = [backoff_s(policy, 1, rng) for _ in range(200)]
    assert max(draws) <= 0.5 and min(draws) >= 0 and len(set(draws)) > 100  # jittered, not a fixed delay


def test_retries_are_bounded_by_attempts_and_by_the_deadline():
    clock = Clock()

    async def always_lost(n):
        clock.now += 1.0
        raise ActorDiedError()

    with pytest.raises(RetriesExhausted) as err:
        _run(with_retries(always_lost, RetrySettings(max_attempts=3, deadline_s=100), 0.0, clock=clock, sleep=clock.sleep))
    assert err.value.attempts == 3 and err.value.reason == "attempts" and err.value.last == "died"

    clock = Clock()
    with pytest.raises(RetriesExhausted) as err:  # attempts left, but the deadline passes first
        _run(with_retries(always_lost, RetrySettings(max_attempts=10, backoff_initial_s=0, deadline_s=2.5), 0.0,
                          clock=clock, sleep=clock.sleep))
    assert err.value.reason == "deadline" and err.value.attempts == 3

    async def hangs_after_a_loss(n):  # the retry waits on a replica that never answers: cut at the deadline
        if n == 1:
            raise ActorDiedError()
        await asyncio.sleep(30)

    t0 = time.monotonic()
    with pytest.raises(RetriesExhausted) as err:
        _run(with_retries(hangs_after_a_loss, RetrySettings(backoff_initial_s=0, deadline_s=0.5), t0))
    assert err.value.reason == "deadline" and err.value.attempts == 2 and time.monotonic() - t0 < 5


def test_other_errors_are_not_retried():
    calls = []

    async def bad(n):
        calls.append(n)
        raise ValueError("a bug, or a bad request")

    with pytest.raises(ValueError):
        _run(with_retries(bad, RetrySettings(), 0.0, clock=lambda: 0.0))
    assert calls == [1]


# -- idempotency store -------------------------------------------------------------------------
ANSWER = {"status": 200, "media_type": "application/json", "headers": {"x-request-id": "r1"}, "body": '{"id":"r1"}'}


def test_idempotency_store_first_answer_conflicts_and_mismatches():
    now = [0.0]
    store = IdempotencyStore(IdempotencySettings(lease_s=10, ttl_s=100), clock=lambda: now[0])
    assert store.begin("s", "f1", "gw-a") == {"state": "new"}
    assert store.begin("s", "f1", "gw-b")["state"] == "running"  # the first is still in progress: 409
    assert store.begin("s", "f2", "gw-b") == {"state": "mismatch"}  # another request under the same key: 422
    assert store.complete("s", "gw-b", ANSWER) is False  # only the owner completes
    assert store.complete("s", "gw-a", ANSWER) is True
    assert store.begin("s", "f1", "gw-b") == {"state": "done", "response": ANSWER}
    now[0] = 101  # past the ttl: forgotten, a repeat runs again
    assert store.begin("s", "f1", "gw-b") == {"state": "new"}


def test_a_failed_request_or_a_dead_gateway_frees_its_key():
    now = [0.0]
    store = IdempotencyStore(IdempotencySettings(lease_s=10), clock=lambda: now[0])
    store.begin("s", "f", "gw-a")
    store.release("s", "gw-a")
    assert store.begin("s", "f", "gw-b") == {"state": "new"}  # the request failed: its repeat runs
    now[0] = 8
    assert store.renew("gw-b", ["s"]) == 1  # gw-b's heartbeat
    now[0] = 15
    assert store.begin("s", "f", "gw-c")["state"] == "running"  # renewed at 8: held until 18
    now[0] = 18.5  # gw-b died: no heartbeat, the lease ran out
    assert store.begin("s", "f", "gw-c") == {"state": "new"}


def test_idempotency_store_bounds_memory():
    store = IdempotencyStore(IdempotencySettings(max_entries=3, max_response_bytes=1024), clock=lambda: 0.0)
    for i in range(5):
        store.begin(f"s{i}", "f", "gw")
        store.complete(f"s{i}", "gw", ANSWER)
    store.begin("s5", "f", "gw")  # over the bound: the oldest answers go first
    assert store.stats()["entries"] <= 4 and store.begin("s0", "f", "gw") == {"state": "new"}
    store.begin("big", "f", "gw")
    assert store.complete("big", "gw", {**ANSWER, "body": "x" * 2000}) is False  # too large to keep
    assert store.begin("big", "f", "gw") == {"state": "new"}


def test_idempotency_keys_are_scoped_per_api_key_and_bodies_compared_canonically():
    assert idempotency_scope("a", "k1") != idempotency_scope("b", "k1")
    body1 = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    body2 = b'{"messages":[{"content":"hi","role":"user"}],  "model":"m"}'
    assert request_fingerprint("chat", body1) == request_fingerprint("chat", body2)
    assert request_fingerprint("chat", body1) != request_fingerprint("completions", body1)
    assert request_fingerprint("chat", body1) != request_fingerprint("chat", body1.replace(b"hi", b"ho"))
    assert valid_idempotency_key("a" * 255) and not valid_idempotency_key("") and not valid_idempotency_key("a" * 256)
    assert not valid_idempotency_key("caf\u00e9") and not valid_idempotency_key("line\nbreak")


# -- rate limits and config --------------------------------------------------------------------
def test_token_bucket_burst_and_sustained_rate():
    now = [0.0]
    rl = RateLimiter(clock=lambda: now[0])
    assert rl.check("k", 60, burst=2) == 0 and rl.check("k", 60, burst=2) == 0
    assert rl.check("k", 60, burst=2) == pytest.approx(1.0)  # 1 per second after the burst of 2
    accepted = 0
    for step in range(1, 1001):  # 100 s of requests every 0.1 s: 100 more pass, not 1000
        now[0] = step * 0.1
        accepted += rl.check("k", 60, burst=2) == 0
    assert accepted == pytest.approx(100, abs=1)


def test_resilience_config_checks():
    with pytest.raises(ConfigError, match="num_replicas 1"):
        validate_config({"deployments": {"coordinator": {"num_replicas": 2}}}, ServeArgs)
    with pytest.raises(ConfigError, match="-1 .unbounded. or at least 1"):
        validate_config({"deployments": {"generator": {"max_queued_requests": 0}}}, ServeArgs)
    with pytest.raises(ConfigError, match="status_code"):
        validate_config({"deployments": {"generator": {"backpressure": {"status_code": 500}}}}, ServeArgs)
    opts = ServeArgs().deployments.generator.serve_options()
    assert opts["max_queued_requests"] == 64 and opts["backpressure_config"] == {"status_code": 503, "retry_after_s": 1.0}
    assert opts["graceful_shutdown_timeout_s"] >= 60  # a stopping generator finishes its requests in flight


def test_a_key_held_by_a_gateway_that_died_is_taken_over_at_once():
    dead = {"gw-a"}
    store = IdempotencyStore(IdempotencySettings(lease_s=60), clock=lambda: 0.0, alive=lambda owner: owner not in dead)
    store.begin("s", "f", "gw-a")
    assert store.begin("s", "f", "gw-b") == {"state": "new"}  # gw-a is gone: no waiting out its lease
    assert store.begin("s", "f", "gw-c")["state"] == "running"  # gw-b is alive
    assert store.begin("s", "other", "gw-c") == {"state": "mismatch"}


class _Handle:
    """A stand-in for the coordinator's DeploymentHandle: ``handle.take.remote(...)`` awaits ``behaviour``."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.calls = 0

    def __getattr__(self, method):
        outer = self

        class _Method:
            @staticmethod
            def remote(*args):
                outer.calls += 1
                return outer.behaviour(method, *args)

        return _Method


def test_gateways_fall_back_to_their_own_buckets_while_the_coordinator_is_down():
    from clinitune.serve.coordinator import CoordinatorClient, CoordinatorUnavailable

    async def dead(method, *args):
        raise ActorDiedError()

    async def run():
        handle = _Handle(dead)
        c = CoordinatorClient(handle, IdempotencySettings(), "gw|1", timeout_s=0.5, backoff_s=60)
        waits = [await c.take("k", 60, 2) for _ in range(3)]
        assert waits[:2] == [0, 0] and waits[2] > 0  # the local bucket (burst 2) still limits
        assert handle.calls == 1  # after one failure it does not wait on the coordinator again for a while
        with pytest.raises(CoordinatorUnavailable):
            await c.begin("scope", "f")  # idempotency cannot be checked: the gateway answers a retryable 503

        async def slow(method, *args):
            await asyncio.sleep(5)

        t0 = time.monotonic()
        c2 = CoordinatorClient(_Handle(slow), IdempotencySettings(), "gw|2", timeout_s=0.2)
        assert await c2.take("k", 60, 1) == 0 and time.monotonic() - t0 < 2  # bounded by the timeout

    asyncio.run(run())


def test_retrieval_is_retried_when_its_replica_is_lost():
    from clinitune.serve.context import _retrieve
    from clinitune.serve.protocol import ApiError

    cfg = ServeArgs(retries={"max_attempts": 2, "backoff_initial_s": 0})
    calls = []

    class Retriever:
        def __init__(self, lost: int):
            self.lost = lost

        @property
        def retrieve(self):
            outer = self

            class _M:
                @staticmethod
                async def remote(kb, queries, top_k):
                    calls.append(kb)
                    if len(calls) <= outer.lost:
                        raise ActorDiedError()
                    return {"hits": [], "kb": kb}

            return _M

    assert asyncio.run(_retrieve(cfg, Retriever(lost=1), "icd10", ["q"], 4)) == {"hits": [], "kb": "icd10"}
    assert calls == ["icd10", "icd10"]
    calls.clear()
    with pytest.raises(ApiError) as err:
        asyncio.run(_retrieve(cfg, Retriever(lost=5), "icd10", ["q"], 4))
    assert err.value.status == 503 and err.value.code == "retries_exhausted" and err.value.headers["retry-after-ms"]
    assert len(calls) == 2
