"""Request metrics per model: requests (by status), latency, tokens, errors (by code); and how the
gateway coped: retries after a lost generator replica, requests turned away (rate limit, full queue,
retries exhausted, an Idempotency-Key in use), idempotent replays, and the generation requests in
flight from this gateway (queued for a generator slot or running).

Recorded twice: as Ray Serve metrics (``ray.serve.metrics``), which Ray exports in Prometheus
format from every node's metrics endpoint for cluster-wide scraping, and in a replica-local
``prometheus_client`` registry served at the gateway's ``GET /metrics`` (one replica's view; handy
for a single-replica deployment and for checks). Generator replicas export their own queue depth
(:class:`GeneratorGauges`) through Ray.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger(__name__)

LATENCY_BUCKETS_S = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

# name -> (help, label names); counters in both registries
_COUNTERS = {
    "clinitune_requests": ("Requests by model, endpoint and HTTP status.", ("model", "endpoint", "status")),
    "clinitune_errors": ("Failed requests by model and error code.", ("model", "code")),
    "clinitune_tokens": ("Tokens processed, by model and kind (prompt or completion).", ("model", "kind")),
    "clinitune_retries": ("Generation attempts lost with their generator replica and retried, by endpoint and how "
                          "the replica was lost (died, unavailable).", ("endpoint", "reason")),
    "clinitune_rejections": ("Requests turned away with a retryable status, by reason (rate_limited, queue_full, "
                             "retries_exhausted, idempotency_in_use, coordinator_unavailable).", ("reason",)),
    "clinitune_idempotent_replays": ("Repeated requests answered with the first answer of their Idempotency-Key.", ()),
}
_INFLIGHT = ("clinitune_generator_inflight", "Generation requests this gateway replica has sent to the generators and "
                                             "not yet had answered (waiting for a replica slot, or running).")


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self._local = {name: Counter(name, doc, list(labels), registry=self.registry)
                       for name, (doc, labels) in _COUNTERS.items()}
        self.latency = Histogram("clinitune_request_latency_seconds", "End-to-end request latency.", ["model", "endpoint"],
                                 buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.inflight = Gauge(*_INFLIGHT, registry=self.registry)
        self._inflight = 0
        self._ray = None
        try:
            from ray.serve import metrics as rm

            self._ray = {name: rm.Counter(name, doc, tag_keys=labels) for name, (doc, labels) in _COUNTERS.items()}
            self._ray["latency"] = rm.Histogram("clinitune_request_latency_ms", "End-to-end request latency in milliseconds.",
                                                boundaries=[b * 1000 for b in LATENCY_BUCKETS_S], tag_keys=("model", "endpoint"))
            self._ray["inflight"] = rm.Gauge(*_INFLIGHT)
        except Exception as err:  # noqa: BLE001 - outside a Serve replica there is no Ray exporter
            log.debug("Ray Serve metrics unavailable: %s", type(err).__name__)

    def _inc(self, name: str, amount: float = 1, **labels: str) -> None:
        self._local[name].labels(**labels).inc(amount) if labels else self._local[name].inc(amount)
        if self._ray is not None:
            try:
                self._ray[name].inc(amount, tags=labels or None)
            except Exception as err:  # noqa: BLE001 - metrics must never fail a request
                log.debug("Ray metric export failed: %s", type(err).__name__)

    def record(self, *, model: str | None, endpoint: str, status: int, latency_s: float, prompt_tokens: int = 0,
               completion_tokens: int = 0, error_code: str | None = None) -> None:
        m = model or "unknown"
        self._inc("clinitune_requests", model=m, endpoint=endpoint, status=str(status))
        self.latency.labels(m, endpoint).observe(latency_s)
        if self._ray is not None:
            try:
                self._ray["latency"].observe(latency_s * 1000, tags={"model": m, "endpoint": endpoint})
            except Exception as err:  # noqa: BLE001
                log.debug("Ray metric export failed: %s", type(err).__name__)
        if prompt_tokens:
            self._inc("clinitune_tokens", prompt_tokens, model=m, kind="prompt")
        if completion_tokens:
            self._inc("clinitune_tokens", completion_tokens, model=m, kind="completion")
        if status >= 400:
            self._inc("clinitune_errors", model=m, code=error_code or str(status))

    def retried(self, endpoint: str, reason: str) -> None:
        self._inc("clinitune_retries", endpoint=endpoint, reason=reason)

    def rejected(self, reason: str) -> None:
        self._inc("clinitune_rejections", reason=reason)

    def replayed(self) -> None:
        self._inc("clinitune_idempotent_replays")

    def generator_inflight(self, delta: int) -> None:
        self._inflight += delta
        self.inflight.set(self._inflight)
        if self._ray is not None:
            try:
                self._ray["inflight"].set(self._inflight)
            except Exception as err:  # noqa: BLE001
                log.debug("Ray metric export failed: %s", type(err).__name__)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class GeneratorGauges:
    """A generator replica's queue, exported through Ray's metrics (tagged with the replica by Serve).

    ``queued``: requests this replica accepted that wait for a decoding batch (their first token);
    ``running``: requests decoding. Requests beyond ``max_ongoing_requests`` wait at their caller
    instead, bounded by ``max_queued_requests`` (Serve exports that queue as
    ``ray_serve_deployment_queued_queries``)."""

    def __init__(self):
        self.queued = 0
        self.running = 0
        self._ray = None
        try:
            from ray.serve import metrics as rm

            self._ray = (rm.Gauge("clinitune_generator_queue_depth", "Requests on this generator replica waiting for a decoding batch."),
                         rm.Gauge("clinitune_generator_running", "Requests decoding on this generator replica."))
        except Exception as err:  # noqa: BLE001
            log.debug("Ray Serve metrics unavailable: %s", type(err).__name__)

    def move(self, queued: int = 0, running: int = 0) -> None:
        self.queued += queued
        self.running += running
        if self._ray is not None:
            try:
                self._ray[0].set(self.queued)
                self._ray[1].set(self.running)
            except Exception as err:  # noqa: BLE001
                log.debug("Ray metric export failed: %s", type(err).__name__)
