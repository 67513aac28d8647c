"""Retrying generation when a generator replica is lost under a request.

Only a *lost replica* is retried: the actor died (``ActorDiedError``, e.g. SIGKILL or out of
memory) or cannot be reached (``ActorUnavailableError``), or such an error surfaced wrapped in a
task error. Generation has no side effects, and a non-streamed answer is returned whole at the
end, so a lost attempt has given the client nothing and running it again elsewhere is safe. A
stream is retried only until its first delta arrives. Anything else — a bad request, an error the
generator answered with, a full queue (``BackPressureError``) — is not retried: retrying it would
give the same answer or add load where there is none to spare.

Attempts are bounded (``max_attempts``), spaced by exponential backoff with full jitter (so the
requests of a dead replica do not all land on the next one at the same instant), and cut off by a
deadline counted from the request's arrival.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import Awaitable, Callable, TypeVar

from ray.exceptions import ActorUnavailableError, RayActorError, RayTaskError

from clinitune.serve.config import RetrySettings

T = TypeVar("T")


def replica_lost(err: BaseException) -> str | None:
    """``"died"`` or ``"unavailable"`` when ``err`` means the replica under a request was lost, else None."""
    cause = getattr(err, "cause", None) if isinstance(err, RayTaskError) else None
    for e in (err, cause):
        if isinstance(e, ActorUnavailableError):
            return "unavailable"
        if isinstance(e, RayActorError):
            return "died"
    return None


def retry_headers(seconds: float) -> dict[str, str]:
    """``retry-after`` in whole seconds (HTTP) and ``retry-after-ms`` (read first by OpenAI's clients)."""
    return {"retry-after": str(max(1, math.ceil(seconds))), "retry-after-ms": str(max(1, round(seconds * 1000)))}


def backoff_s(policy: RetrySettings, retry: int, rng: random.Random | None = None) -> float:
    """Wait before retry number ``retry`` (1 = the first retry): uniform in [0, min(max, initial * 2^(retry-1))]."""
    cap = min(policy.backoff_max_s, policy.backoff_initial_s * (2 ** (retry - 1)))
    return (rng or random).uniform(0, cap)


class RetriesExhausted(Exception):
    """Every attempt lost its replica, or the deadline passed; ``attempts`` were made."""

    def __init__(self, attempts: int, reason: str, last: str | None = None):
        super().__init__(f"{attempts} attempt(s), {reason}")
        self.attempts = attempts
        self.reason = reason  # "attempts" | "deadline"
        self.last = last  # died | unavailable


async def with_retries(call: Callable[[int], Awaitable[T]], policy: RetrySettings, started: float, *,
                       on_retry: Callable[[int, str], None] | None = None, clock=time.monotonic,
                       sleep=asyncio.sleep, rng: random.Random | None = None) -> T:
    """``await call(attempt)`` until it succeeds, retrying lost replicas within the policy.

    ``started`` is the request's arrival on ``clock``. The first attempt runs as long as it needs;
    later ones are cancelled at the deadline. ``on_retry(attempt, how)`` is told of each lost attempt.
    """
    attempt = 0
    lost: str | None = None
    while True:
        attempt += 1
        try:
            if attempt == 1:
                return await call(attempt)
            remaining = policy.deadline_s - (clock() - started)
            if remaining <= 0:
                raise RetriesExhausted(attempt - 1, "deadline", lost)
            try:
                return await asyncio.wait_for(call(attempt), remaining)
            except asyncio.TimeoutError:
                raise RetriesExhausted(attempt, "deadline", lost) from None
        except Exception as err:  # noqa: BLE001 - classified below, re-raised unless the replica was lost
            how = replica_lost(err)
            if how is None:
                raise
            lost = how
            if on_retry is not None:
                on_retry(attempt, how)
            if attempt >= policy.max_attempts:
                raise RetriesExhausted(attempt, "attempts", how) from None
            delay = backoff_s(policy, attempt, rng)
            if clock() - started + delay >= policy.deadline_s:
                raise RetriesExhausted(attempt, "deadline", how) from None
            await sleep(delay)
