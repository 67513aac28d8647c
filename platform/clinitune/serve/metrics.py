"""Request metrics per model: requests (by status), latency, tokens, errors (by code).

Recorded twice: as Ray Serve metrics (``ray.serve.metrics``), which Ray exports in Prometheus
format from every node's metrics endpoint for cluster-wide scraping, and in a replica-local
``prometheus_client`` registry served at the gateway's ``GET /metrics`` (one replica's view; handy
for a single-replica deployment and for checks).
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

log = logging.getLogger(__name__)

LATENCY_BUCKETS_S = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("clinitune_requests", "Requests by model, endpoint and HTTP status.",
                                ["model", "endpoint", "status"], registry=self.registry)
        self.errors = Counter("clinitune_errors", "Failed requests by model and error code.", ["model", "code"],
                              registry=self.registry)
        self.latency = Histogram("clinitune_request_latency_seconds", "End-to-end request latency.", ["model", "endpoint"],
                                 buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.tokens = Counter("clinitune_tokens", "Tokens processed, by model and kind (prompt or completion).",
                              ["model", "kind"], registry=self.registry)
        self._ray = None
        try:
            from ray.serve import metrics as rm

            self._ray = {
                "requests": rm.Counter("clinitune_requests", "Requests by model, endpoint and HTTP status.",
                                       tag_keys=("model", "endpoint", "status")),
                "errors": rm.Counter("clinitune_errors", "Failed requests by model and error code.", tag_keys=("model", "code")),
                "latency": rm.Histogram("clinitune_request_latency_ms", "End-to-end request latency in milliseconds.",
                                        boundaries=[b * 1000 for b in LATENCY_BUCKETS_S], tag_keys=("model", "endpoint")),
                "tokens": rm.Counter("clinitune_tokens", "Tokens processed, by model and kind.", tag_keys=("model", "kind")),
            }
        except Exception as err:  # noqa: BLE001 - outside a Serve replica there is no Ray exporter
            log.debug("Ray Serve metrics unavailable: %s", type(err).__name__)

    def record(self, *, model: str | None, endpoint: str, status: int, latency_s: float, prompt_tokens: int = 0,
               completion_tokens: int = 0, error_code: str | None = None) -> None:
        m = model or "unknown"
        self.requests.labels(m, endpoint, str(status)).inc()
        self.latency.labels(m, endpoint).observe(latency_s)
        if prompt_tokens:
            self.tokens.labels(m, "prompt").inc(prompt_tokens)
        if completion_tokens:
            self.tokens.labels(m, "completion").inc(completion_tokens)
        if status >= 400:
            self.errors.labels(m, error_code or str(status)).inc()
        if self._ray is not None:
            try:
                self._ray["requests"].inc(1, tags={"model": m, "endpoint": endpoint, "status": str(status)})
                self._ray["latency"].observe(latency_s * 1000, tags={"model": m, "endpoint": endpoint})
                if prompt_tokens:
                    self._ray["tokens"].inc(prompt_tokens, tags={"model": m, "kind": "prompt"})
                if completion_tokens:
                    self._ray["tokens"].inc(completion_tokens, tags={"model": m, "kind": "completion"})
                if status >= 400:
                    self._ray["errors"].inc(1, tags={"model": m, "code": error_code or str(status)})
            except Exception as err:  # noqa: BLE001 - metrics must never fail a request
                log.debug("Ray metric export failed: %s", type(err).__name__)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
