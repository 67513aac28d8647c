"""State the gateway replicas share: per-key rate limits and Idempotency-Key records.

A limit kept by each gateway replica multiplies with the replica count (three replicas let a key
through three times its rate), and a client's retry may land on another replica than its first
try. So both live in one place: the ``Coordinator`` deployment, a single Serve replica that holds
token buckets (:class:`~clinitune.serve.auth.RateLimiter`) and an :class:`IdempotencyStore` in
memory. It is a Serve deployment rather than a free-standing named actor because Serve then owns
its life: it is health-checked and restarted when it dies, started and deleted with the
application, and needs no cluster-wide name. A call costs one actor round trip (about a
millisecond on an idle machine) and is made only for keys with a limit and for requests that
carry an ``Idempotency-Key``.

What a restart (a crash, or a redeploy of the application, which replaces every replica) loses:
the buckets refill (a key may burst once more) and completed answers are
forgotten (a repeat is generated again). Gateways fall back to their own buckets while the
coordinator cannot be reached, and answer requests with an ``Idempotency-Key`` with a retryable
503 rather than run them unprotected. Answers kept for repeats are held in memory only (never
written anywhere) and have already passed the PHI guard.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import ray
from ray import serve

from clinitune.serve.auth import RateLimiter
from clinitune.serve.config import IdempotencySettings

log = logging.getLogger("ray.serve")


@dataclass
class _Entry:
    fingerprint: str
    owner: str
    expires: float  # monotonic: lease end while running, ttl end once done
    response: dict[str, Any] | None = None  # {"status", "media_type", "headers", "body"} once done


class IdempotencyStore:
    """Idempotency records keyed by an opaque scope (a hash of API key id and Idempotency-Key).

    ``begin`` answers ``new`` (the caller runs the request and must ``complete`` or ``release`` it),
    ``done`` (with the first answer), ``running`` (the first request is still in progress) or
    ``mismatch`` (the key was used for a different request). A running record lives ``lease_s``
    past its owner's last ``renew``, so a key held by a gateway that died frees itself; sooner when
    ``alive(owner)`` says the owner is gone (asked only when a repeat finds the record running).
    """

    def __init__(self, settings: IdempotencySettings, clock=time.monotonic, alive=None):
        self.settings = settings
        self._clock = clock
        self._alive = alive
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._swept = clock()

    def _sweep(self, now: float) -> None:
        if now - self._swept < 1.0 and len(self._entries) <= self.settings.max_entries:
            return
        self._swept = now
        for scope in [s for s, e in self._entries.items() if e.expires <= now]:
            del self._entries[scope]
        excess = len(self._entries) - self.settings.max_entries
        if excess > 0:  # forget the oldest completed answers first; running records are in-flight requests
            for scope in [s for s, e in self._entries.items() if e.response is not None][:excess]:
                del self._entries[scope]

    def _live(self, scope: str, now: float) -> _Entry | None:
        e = self._entries.get(scope)
        if e is not None and e.expires <= now:
            del self._entries[scope]
            return None
        return e

    def begin(self, scope: str, fingerprint: str, owner: str) -> dict[str, Any]:
        now = self._clock()
        self._sweep(now)
        e = self._live(scope, now)
        if e is not None and e.response is None and e.fingerprint == fingerprint and self._alive is not None \
                and not self._alive(e.owner):
            del self._entries[scope]  # its gateway died with the request: the client's retry runs it
            e = None
        if e is None:
            self._entries[scope] = _Entry(fingerprint, owner, now + self.settings.lease_s)
            return {"state": "new"}
        if e.fingerprint != fingerprint:
            return {"state": "mismatch"}
        if e.response is not None:
            return {"state": "done", "response": e.response}
        return {"state": "running", "retry_after_s": min(1.0, max(0.1, e.expires - now))}

    def complete(self, scope: str, owner: str, response: dict[str, Any]) -> bool:
        """Keep ``response`` for repeats; False when it is too large to keep (the record is dropped)."""
        now = self._clock()
        e = self._live(scope, now)
        if e is None or e.owner != owner or e.response is not None:
            return False
        if len(response.get("body", "")) > self.settings.max_response_bytes:
            del self._entries[scope]
            return False
        e.response, e.expires = response, now + self.settings.ttl_s
        return True

    def release(self, scope: str, owner: str) -> None:
        """Forget a running record (the request failed: a repeat runs again)."""
        e = self._entries.get(scope)
        if e is not None and e.owner == owner and e.response is None:
            del self._entries[scope]

    def renew(self, owner: str, scopes: list[str]) -> int:
        now = self._clock()
        n = 0
        for scope in scopes:
            e = self._live(scope, now)
            if e is not None and e.owner == owner and e.response is None:
                e.expires = now + self.settings.lease_s
                n += 1
        return n

    def stats(self) -> dict[str, int]:
        running = sum(1 for e in self._entries.values() if e.response is None)
        return {"entries": len(self._entries), "running": running, "done": len(self._entries) - running}


def replica_alive(owner: str) -> bool:
    """Whether the gateway replica named in ``owner`` (``<replica actor name>|<nonce>``) still exists."""
    name = owner.rsplit("|", 1)[0]
    if not name.startswith("SERVE_REPLICA::"):
        return True
    try:
        ray.get_actor(name, namespace="serve")  # a dead replica's name is released (a restart gets a new one)
        return True
    except ValueError:
        return False
    except Exception:  # noqa: BLE001 - cannot tell: keep the record (its lease still frees it)
        return True


@serve.deployment(name="Coordinator")
class Coordinator:
    """One replica (``deployments.coordinator``): the cluster's rate-limit buckets and idempotency records.

    Methods are coroutines without awaits, so the replica's event loop runs each one whole: no two
    gateways can interleave inside a bucket update or a ``begin``."""

    def __init__(self, idempotency: dict[str, Any]):
        self.limiter = RateLimiter()
        self.store = IdempotencyStore(IdempotencySettings.model_validate(idempotency), alive=replica_alive)

    async def take(self, key_id: str, per_minute: int | None, burst: int | None) -> float:
        """0 when a request of ``key_id`` may go ahead (and is counted), else seconds until it may."""
        return self.limiter.check(key_id, per_minute, burst)

    async def begin(self, scope: str, fingerprint: str, owner: str) -> dict[str, Any]:
        return self.store.begin(scope, fingerprint, owner)

    async def complete(self, scope: str, owner: str, response: dict[str, Any]) -> bool:
        return self.store.complete(scope, owner, response)

    async def release(self, scope: str, owner: str) -> None:
        self.store.release(scope, owner)

    async def renew(self, owner: str, scopes: list[str]) -> int:
        return self.store.renew(owner, scopes)

    async def stats(self) -> dict[str, int]:
        return self.store.stats()


# -- the gateway's side ------------------------------------------------------------------------------
IDEMPOTENCY_HEADER = "idempotency-key"


class CoordinatorUnavailable(Exception):
    """The coordinator did not answer in time (it is restarting, or the cluster is overloaded)."""


def valid_idempotency_key(key: str) -> bool:
    return 1 <= len(key) <= 255 and key.isascii() and key.isprintable()


def idempotency_scope(key_id: str, key: str) -> str:
    """Records are per API key (one client can never read another's answers); the raw key is not kept."""
    return hashlib.sha256(f"{key_id}\0{key}".encode()).hexdigest()


def request_fingerprint(endpoint: str, body: bytes) -> str:
    """The same request whatever its JSON key order or spacing: the endpoint and the canonical JSON body."""
    canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{endpoint}\0{canonical}".encode()).hexdigest()


class CoordinatorClient:
    """How a gateway replica uses the coordinator: calls bounded by ``timeout_s``, its own buckets while
    the coordinator is unreachable, and a heartbeat that renews the idempotency records it holds."""

    def __init__(self, handle, settings: IdempotencySettings, owner: str, *, timeout_s: float = 2.0,
                 backoff_s: float = 2.0):
        self.handle = handle
        self.settings = settings
        self.owner = owner
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s  # after a failed call, answer "unavailable" at once for this long
        self._down_until = 0.0
        self.fallback = RateLimiter()
        self.held: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self._renewer: asyncio.Task | None = None
        self._warned = 0.0

    async def _call(self, method: str, *args):
        if self.handle is None:
            raise CoordinatorUnavailable("no coordinator deployment")
        if time.monotonic() < self._down_until:  # do not make every request wait out the timeout
            raise CoordinatorUnavailable("unreachable moments ago")
        try:
            return await asyncio.wait_for(getattr(self.handle, method).remote(*args), self.timeout_s)
        except Exception as err:  # noqa: BLE001 - timeouts, a dead or restarting replica: all mean "not now"
            self._down_until = time.monotonic() + self.backoff_s
            raise CoordinatorUnavailable(type(err).__name__) from None

    async def take(self, key_id: str, per_minute: int | None, burst: int | None) -> float:
        """Seconds until ``key_id`` may send again (0: go ahead, counted cluster-wide when possible)."""
        if per_minute is None:
            return 0.0
        try:
            return await self._call("take", key_id, per_minute, burst)
        except CoordinatorUnavailable as err:
            now = time.monotonic()
            if now - self._warned > 30:
                self._warned = now
                log.warning("coordinator unreachable (%s): rate limits are per gateway replica until it is back", err)
            return self.fallback.check(key_id, per_minute, burst)

    async def begin(self, scope: str, fingerprint: str) -> dict[str, Any]:
        got = await self._call("begin", scope, fingerprint, self.owner)
        if got["state"] == "new":
            self.held.add(scope)
            self._ensure_renewer()
        return got

    async def complete(self, scope: str, response: dict[str, Any]) -> None:
        self.held.discard(scope)
        try:
            await self._call("complete", scope, self.owner, response)
        except CoordinatorUnavailable as err:  # its lease runs out: a repeat runs again
            log.warning("could not keep an answer for its idempotency key (%s)", err)

    def release_soon(self, scope: str) -> None:
        """Free a key whose request failed (without waiting: this runs on error and cancellation paths)."""
        self.held.discard(scope)

        async def release() -> None:
            try:
                await self._call("release", scope, self.owner)
            except CoordinatorUnavailable:
                pass  # the lease frees it

        task = asyncio.get_running_loop().create_task(release())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _ensure_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_loop())

    async def _renew_loop(self) -> None:
        while self.held:
            await asyncio.sleep(self.settings.lease_s / 3)
            if self.held:
                try:
                    await self._call("renew", self.owner, sorted(self.held))
                except CoordinatorUnavailable as err:
                    log.warning("idempotency lease renewal failed (%s)", err)
