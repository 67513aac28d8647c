"""API keys and per-key rate limits.

Keys are never stored: the config (and the ``CLINITUNE_API_KEYS`` environment variable) hold the
SHA-256 of each key, its id, the model ids it may use and its rate limit. API keys are long random
tokens, so an unsalted fast hash is the usual choice (it is what GitHub and Stripe do); comparison
is constant-time.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass

from clinitune.config import validate_config
from clinitune.errors import ConfigError
from clinitune.serve.config import ApiKeySpec, AuthSettings


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random API key (show it once; store only :func:`hash_key` of it)."""
    return "ct-" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    key_id: str
    models: tuple[str, ...]
    requests_per_minute: int | None
    burst: int | None = None  # token bucket size; None = requests_per_minute

    def may_use(self, model_id: str) -> bool:
        return any(fnmatch.fnmatchcase(model_id, pattern) for pattern in self.models)


ANONYMOUS = Principal("anonymous", ("*",), None)


def load_keys(settings: AuthSettings, environ: dict[str, str] | None = None) -> list[ApiKeySpec]:
    """Keys from the config plus those in the environment variable ``settings.keys_env``."""
    keys = list(settings.keys)
    env = os.environ if environ is None else environ
    raw = env.get(settings.keys_env) if settings.keys_env else None
    if raw:
        try:
            items = json.loads(raw)
        except json.JSONDecodeError:
            raise ConfigError(f"environment variable {settings.keys_env} is not valid JSON. "
                              "Fix: set it to a JSON list of {\"id\", \"sha256\", \"models\", \"requests_per_minute\"} objects.") from None
        if not isinstance(items, list):
            raise ConfigError(f"environment variable {settings.keys_env} must hold a JSON list of key objects.")
        keys += [validate_config(item, ApiKeySpec, source=f"${settings.keys_env}[{i}]") for i, item in enumerate(items)]
    ids = [k.id for k in keys]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ConfigError(f"auth.keys: key id(s) {dup} appear more than once. Fix: give every key its own id.")
    return keys


class KeyStore:
    """Authenticates ``Authorization: Bearer <key>`` headers."""

    def __init__(self, settings: AuthSettings, environ: dict[str, str] | None = None):
        self.enabled = settings.enabled
        self._keys = [(bytes.fromhex(k.sha256), Principal(k.id, tuple(k.models), k.requests_per_minute, k.burst))
                      for k in load_keys(settings, environ)]
        if self.enabled and not self._keys:
            raise ConfigError("auth is enabled but no API key is configured. Fix: add auth.keys (see 'clinitune serve "
                              f"hash-key'), set {settings.keys_env}, or set auth.enabled: false for local experiments.")

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The caller for this header, or None when the key is missing or unknown."""
        if not self.enabled:
            return ANONYMOUS
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = hashlib.sha256(token.strip().encode("utf-8")).digest()
        found = None
        for stored, principal in self._keys:  # compare against every key: timing does not reveal which matched
            if hmac.compare_digest(stored, digest):
                found = principal
        return found


class RateLimiter:
    """Token buckets per key id: ``per_minute`` sustained, bursts up to ``burst`` (default: ``per_minute``).

    The serving coordinator holds one for the whole cluster; a gateway keeps its own only as the
    fallback while the coordinator cannot be reached."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key_id: str, per_minute: int | None, burst: int | None = None) -> float:
        """0 when the request may go ahead (and is counted), else seconds until it may be retried."""
        if per_minute is None:
            return 0.0
        rate = per_minute / 60.0
        size = float(burst or per_minute)
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (size, now))
            tokens = min(size, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / rate
