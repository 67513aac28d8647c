"""Serving configuration.

A file under ``serving/`` is a Ray Serve config file holding one Clinitune application, so the
same file works three ways::

    clinitune serve --config serving/local.yaml      # start Ray + Serve here and run it
    serve run serving/local.yaml                      # Ray's own CLI
    serve deploy serving/cluster.yaml                 # onto a running cluster (or a RayService's serveConfigV2)

:class:`ServeAppConfig` models that file (the subset of Serve's schema we use, so every file that
validates here is also a valid Serve config); the application's ``args`` are a
:class:`ServeArgs`, which ``clinitune.serve.app:build_app`` receives.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from clinitune.config import StrictModel, renamed_keys
from clinitune.registry.settings import RegistrySettings

IMPORT_PATH = "clinitune.serve.app:build_app"
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$")


class ModelSettings(StrictModel):
    """The base model and the model ids clients use."""

    base: str = Field("smollm2-135m-instruct", description="Base model: a name registered with 'clinitune models' (the embedded default is smollm2-135m-instruct) or a local Hugging Face model directory.")
    name: str = Field("clinitune", description="Model id meaning 'the adapter promoted to production' (what clients use by default).")
    base_alias: str | None = Field("base", description="Model id for the base model without an adapter; null hides the base model.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Weight dtype (bfloat16/float16 on GPUs).")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where the generator runs: auto picks CUDA when the replica has a GPU.")
    max_context_tokens: int | None = Field(None, gt=0, description="Prompt + completion token limit; null uses the model's max_position_embeddings.")
    max_tokens_limit: int = Field(1024, gt=0, description="Largest max_tokens a request may ask for (larger is a 400 error).")
    default_max_tokens: int = Field(256, gt=0, description="Completion length when a chat request does not set max_tokens (completions default to 16, as OpenAI's do).")
    torch_threads: int | None = Field(None, gt=0, description="Intra-op threads per generator replica (set with OMP/MKL_NUM_THREADS when the replica starts); null = the replica's num_cpus rounded down, as Ray sets it (at least 1).")

    @field_validator("name", "base_alias")
    @classmethod
    def _model_id(cls, v: str | None) -> str | None:
        if v is not None and not _MODEL_ID.match(v):
            raise ValueError("must be 1-128 letters, digits or ._:@/- starting with a letter or digit")
        return v


class ServingRegistrySettings(RegistrySettings):
    """Where promotions and rollbacks are read from (the model registry of the training pipeline).

    With ``tracking_uri`` its versions are served as '<model.name>:v<version>' and its 'production'
    alias is used when no pointer_file is set."""

    pointer_file: str | None = Field(None, description="The registry's production pointer file (JSON with version and artifact path), e.g. work/registry/production.json; re-read when it changes.")

    @model_validator(mode="before")
    @classmethod
    def _old_spellings(cls, data):
        return renamed_keys(data, {"registered_model": "model_name"}, "serving config adapters.registry")

    @model_validator(mode="after")
    def _one_source(self) -> "ServingRegistrySettings":
        if not self.pointer_file and not self.tracking_uri:
            raise ValueError("set pointer_file or tracking_uri (or remove the registry section)")
        return self


class AdapterSettings(StrictModel):
    """LoRA adapters served on the base model."""

    static: dict[str, str] = Field(default_factory=dict, description="Fixed adapters: model id -> PEFT adapter directory (or a training artifact holding adapter/).")
    production: str | None = Field(None, description="Which static adapter answers model.name when no registry is configured.")
    registry: ServingRegistrySettings | None = Field(None, description="Registry-backed adapters: production (hot-reloaded on promotion/rollback) and registered versions.")
    refresh_s: float = Field(2.0, gt=0, description="How often the gateway re-reads the registry for promotions and rollbacks, in seconds.")
    max_loaded_per_replica: int = Field(4, ge=1, description="LRU bound: adapters kept loaded on one generator replica.")

    @model_validator(mode="after")
    def _production_known(self) -> "AdapterSettings":
        if self.production is not None and self.production not in self.static:
            raise ValueError(f"production adapter '{self.production}' is not one of the static adapters {sorted(self.static)}")
        for name in self.static:
            if not _MODEL_ID.match(name):
                raise ValueError(f"static adapter name {name!r} must be 1-128 letters, digits or ._:@/-")
        return self


class BatchingSettings(StrictModel):
    """Dynamic batching of generation on each generator replica."""

    max_batch_size: int = Field(16, ge=1, le=256, description="Most requests decoded together in one batch.")
    batch_wait_timeout_s: float = Field(0.02, ge=0, le=5, description="How long a batch waits to fill before it starts, in seconds.")


class RetrievalSettings(StrictModel):
    """Hybrid retrieval-augmented generation."""

    deploy: bool = Field(True, description="Run the retriever deployment; false turns retrieval off for every request.")
    enabled: bool = Field(True, description="Retrieve for chat requests unless the request says otherwise.")
    for_completions: bool = Field(False, description="Also retrieve for /v1/completions requests by default (they can always opt in).")
    kb_root: str | None = Field(None, description="Directory (or object-store URI) of the knowledge bases; null is <workdir>/kb.")
    default_kb: str = Field("icd10", description="Knowledge base used when a request does not name one.")
    top_k: int = Field(4, ge=1, le=50, description="Passages put in the prompt and returned as citations.")
    max_top_k: int = Field(20, ge=1, le=100, description="Largest top_k a request may ask for.")
    candidates: int = Field(20, ge=1, le=500, description="Candidates taken from each of the full-text and vector searches before fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")
    context_chars: int = Field(600, ge=50, description="Characters of each passage put in the prompt.")
    snippet_chars: int = Field(240, ge=20, description="Characters of each passage returned in a citation.")
    vector_index_min_rows: int = Field(10_000, ge=1, description="Build a vector index once a knowledge base has this many chunks (below, search is exhaustive).")


class DecodingSettings(StrictModel):
    """Decoding defaults for requests that do not set them."""

    code_system: str | None = Field(None, description="Terminology-constrained decoding by default: codes in answers must exist in this code system's table ('icd10cm', or 'file:PATH' for a table of your own; null = no constraint). A request overrides it with the 'code_system' extension ('none' turns it off).")

    @field_validator("code_system")
    @classmethod
    def _known_system(cls, v: str | None) -> str | None:
        from clinitune.terminology.systems import check_code_system

        return check_code_system(v, "decoding.code_system")


class PhiGuardSettings(StrictModel):
    """PHI guard: the de-identification engine on what leaves (and optionally enters) the model."""

    output: Literal["redact", "block", "off"] = Field("redact", description="Model output with PHI: redact it (tags like [NAME]), block it (empty answer, finish_reason content_filter) or pass it (off).")
    prompt: Literal["off", "redact", "block"] = Field("off", description="Prompts with PHI: pass them, redact them before the model and retrieval see them, or refuse them (400).")
    citations: bool = Field(True, description="Redact PHI in citation snippets too.")
    stream_holdback_chars: int = Field(48, ge=0, le=1000, description="While streaming, this many trailing characters wait for more context before they are checked and sent.")
    detector: Literal["ensemble", "rules"] | None = Field(None, description="PHI detector: 'ensemble' (learned tagger + rules, the same engine as curation) or 'rules' (faster, lower recall); null: the engine's default, 'ensemble'.")
    model_dir: str | None = Field(None, description="A trained PHI tagger directory; null: the one shipped in the package.")


class ApiKeySpec(StrictModel):
    """One API key, stored as the SHA-256 of the key (make one with 'clinitune serve hash-key')."""

    id: str = Field(..., min_length=1, max_length=64, description="Key id written to the audit log and metrics (never the key).")
    sha256: str = Field(..., description="Hex SHA-256 of the key.")
    models: list[str] = Field(default_factory=lambda: ["*"], description="Model ids this key may use (shell patterns; '*' = all).")
    requests_per_minute: int | None = Field(60, ge=1, description="Sustained rate limit, enforced across all gateway replicas together; null = unlimited.")
    burst: int | None = Field(None, ge=1, description="Most requests accepted at once after an idle spell (the token bucket's size); null = requests_per_minute.")

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str) -> str:
        v = v.lower().removeprefix("sha256:")
        if not re.fullmatch(r"[0-9a-f]{64}", v):
            raise ValueError("must be 64 hex characters (the SHA-256 of the key; see 'clinitune serve hash-key')")
        return v


class AuthSettings(StrictModel):
    """API keys."""

    enabled: bool = Field(True, description="Require an API key (Authorization: Bearer <key>) on /v1 endpoints.")
    keys: list[ApiKeySpec] = Field(default_factory=list, description="Keys allowed in, hashed.")
    keys_env: str | None = Field("CLINITUNE_API_KEYS", description="Environment variable with more keys: a JSON list of objects shaped like 'keys' entries.")


class LimitSettings(StrictModel):
    """Request limits."""

    max_body_bytes: int = Field(1_000_000, ge=1024, description="Largest request body; larger is a 413 error.")
    max_messages: int = Field(256, ge=1, description="Most messages in one chat request.")
    max_stop: int = Field(4, ge=0, le=16, description="Most stop sequences in one request.")


class AuditSettings(StrictModel):
    """The audit log: JSON lines with time, key id, model, adapter, token counts, latency and status; never text."""

    path: str | None = Field(None, description="Audit log file; null is <workdir>/audit/audit.jsonl.")


class AutoscalingSettings(StrictModel):
    """Serve autoscaling for one deployment."""

    min_replicas: int = Field(1, ge=0, description="Fewest replicas.")
    max_replicas: int = Field(4, ge=1, description="Most replicas.")
    target_ongoing_requests: float = Field(8, gt=0, description="Requests in flight per replica the autoscaler aims for.")
    upscale_delay_s: float = Field(10, ge=0, description="How long load must stay high before adding replicas.")
    downscale_delay_s: float = Field(300, ge=0, description="How long load must stay low before removing replicas.")

    @model_validator(mode="after")
    def _range(self) -> "AutoscalingSettings":
        if self.max_replicas < self.min_replicas:
            raise ValueError("max_replicas must be at least min_replicas")
        return self


class BackpressureSettings(StrictModel):
    """How a request is answered when a deployment's queue (``max_queued_requests``) is full."""

    status_code: Literal[429, 503] = Field(503, description="HTTP status of a request turned away because the queue is full (both are retryable).")
    retry_after_s: float = Field(1.0, ge=0, le=3600, description="Retry-After sent with it, in seconds (also sent as retry-after-ms in milliseconds).")


class DeploymentSettings(StrictModel):
    """Replica settings of one Serve deployment."""

    num_replicas: int = Field(1, ge=1, description="Fixed replica count (ignored when autoscaling is set).")
    autoscaling: AutoscalingSettings | None = Field(None, description="Autoscale between min and max replicas instead of a fixed count.")
    max_ongoing_requests: int = Field(64, ge=1, description="Requests one replica handles at once (the generator needs at least max_batch_size).")
    num_cpus: float = Field(1.0, ge=0, description="CPUs reserved per replica.")
    num_gpus: float = Field(0.0, ge=0, description="GPUs reserved per replica.")
    health_check_period_s: float = Field(10.0, gt=0, description="How often Serve checks a replica's health.")
    max_queued_requests: int = Field(-1, ge=-1, description="Requests each caller (a gateway replica, or Serve's HTTP proxy for the gateway) may hold waiting for a free replica slot; more are turned away at once with the backpressure status. -1 = unbounded.")
    backpressure: BackpressureSettings = Field(default_factory=BackpressureSettings, description="The answer to a request turned away because the queue is full.")
    graceful_shutdown_timeout_s: float = Field(20.0, ge=0, description="How long a stopping replica (redeploy, scale-down) may finish requests in flight before it is killed; set it above the longest request.")
    graceful_shutdown_wait_loop_s: float = Field(2.0, gt=0, description="How often a stopping replica checks whether its requests in flight have finished.")
    max_surge_percent: int = Field(0, ge=0, le=100, description="Extra replicas a rolling update may start before stopping old ones (percent of the replica count, rounded up); 0 stops an old replica before its replacement starts, so a single replica pauses traffic while it restarts.")

    @field_validator("max_queued_requests")
    @classmethod
    def _queue(cls, v: int) -> int:
        if v == 0:
            raise ValueError("must be -1 (unbounded) or at least 1")
        return v

    def serve_options(self) -> dict:
        opts: dict = {
            "max_ongoing_requests": self.max_ongoing_requests,
            "max_queued_requests": self.max_queued_requests,
            "backpressure_config": self.backpressure.model_dump(),
            "ray_actor_options": {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus},
            "health_check_period_s": self.health_check_period_s,
            "graceful_shutdown_timeout_s": self.graceful_shutdown_timeout_s,
            "graceful_shutdown_wait_loop_s": self.graceful_shutdown_wait_loop_s,
            "max_surge_percent": self.max_surge_percent,
        }
        if self.autoscaling is not None:
            a = self.autoscaling
            opts["autoscaling_config"] = {
                "min_replicas": a.min_replicas, "max_replicas": a.max_replicas,
                "target_ongoing_requests": a.target_ongoing_requests,
                "upscale_delay_s": a.upscale_delay_s, "downscale_delay_s": a.downscale_delay_s,
            }
        else:
            opts["num_replicas"] = self.num_replicas
        return opts


class DeploymentsSettings(StrictModel):
    """Replica settings per deployment."""

    gateway: DeploymentSettings = Field(default_factory=lambda: DeploymentSettings(num_cpus=0.5, max_ongoing_requests=256, graceful_shutdown_timeout_s=120), description="The HTTP ingress (auth, limits, guard, audit).")
    generator: DeploymentSettings = Field(default_factory=lambda: DeploymentSettings(num_cpus=1.0, max_ongoing_requests=64, max_queued_requests=64, graceful_shutdown_timeout_s=120), description="Base model + LoRA adapters.")
    retriever: DeploymentSettings = Field(default_factory=lambda: DeploymentSettings(num_cpus=0.5, max_ongoing_requests=64), description="Hybrid retrieval over the knowledge bases.")
    coordinator: DeploymentSettings = Field(default_factory=lambda: DeploymentSettings(num_cpus=0.05, max_ongoing_requests=1000, graceful_shutdown_timeout_s=5), description="Cluster-wide rate limits and idempotency keys (exactly one replica).")

    @model_validator(mode="after")
    def _one_coordinator(self) -> "DeploymentsSettings":
        c = self.coordinator
        if c.num_replicas != 1 or c.autoscaling is not None:
            raise ValueError("deployments.coordinator keeps the shared rate-limit and idempotency state in memory: "
                             "it must have num_replicas 1 and no autoscaling")
        return self


class RetrySettings(StrictModel):
    """Retries of generation when a generator replica dies or cannot be reached before any output was returned."""

    max_attempts: int = Field(3, ge=1, le=10, description="Most attempts per request, the first included (1 = no retries).")
    backoff_initial_s: float = Field(0.1, ge=0, description="Backoff before the first retry; it doubles per retry (full jitter: a random wait up to it).")
    backoff_max_s: float = Field(2.0, ge=0, description="Largest backoff between two attempts.")
    deadline_s: float = Field(120.0, gt=0, description="No retry starts, and a retry in progress is given up, this long after the request arrived: the answer is then 503 with retry-after (long enough for a replica to restart).")
    retry_after_s: float = Field(2.0, ge=0, description="Retry-After sent when retries are exhausted.")
    stream_idle_timeout_s: float = Field(120.0, gt=0, description="A stream that receives nothing from its replica for this long ends with an error event (never a hang).")


class IdempotencySettings(StrictModel):
    """Idempotency-Key: a repeated request with the same key gets the first answer instead of a second generation."""

    ttl_s: float = Field(86_400, gt=0, description="How long a completed answer is kept for repeats, in seconds.")
    max_entries: int = Field(10_000, ge=1, description="Most answers kept (the oldest are forgotten first); held in the coordinator's memory only.")
    max_response_bytes: int = Field(1_000_000, ge=1024, description="Answers larger than this are not kept (a repeat generates again).")
    lease_s: float = Field(15.0, gt=0, description="A request in progress holds its key this long past its gateway's last heartbeat, so a key held by a gateway that died frees itself.")


class ServeArgs(StrictModel):
    """The Clinitune application's settings (the ``args`` of its entry in a Serve config file)."""

    workdir: str = Field("work", description="Directory for serving state: knowledge bases (kb/) and the audit log (audit/) unless set explicitly.")
    model: ModelSettings = Field(default_factory=ModelSettings, description="Base model and model ids.")
    adapters: AdapterSettings = Field(default_factory=AdapterSettings, description="LoRA adapters and where production comes from.")
    batching: BatchingSettings = Field(default_factory=BatchingSettings, description="Dynamic batching.")
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings, description="Hybrid RAG.")
    decoding: DecodingSettings = Field(default_factory=DecodingSettings, description="Decoding defaults (terminology constraint).")
    phi_guard: PhiGuardSettings = Field(default_factory=PhiGuardSettings, description="PHI guard.")
    auth: AuthSettings = Field(default_factory=AuthSettings, description="API keys and rate limits.")
    limits: LimitSettings = Field(default_factory=LimitSettings, description="Request limits.")
    audit: AuditSettings = Field(default_factory=AuditSettings, description="Audit log.")
    retries: RetrySettings = Field(default_factory=RetrySettings, description="Retries when a generator replica dies under a request.")
    idempotency: IdempotencySettings = Field(default_factory=IdempotencySettings, description="Idempotency-Key handling.")
    deployments: DeploymentsSettings = Field(default_factory=DeploymentsSettings, description="Replica and autoscaling settings per deployment.")

    @model_validator(mode="after")
    def _consistent(self) -> "ServeArgs":
        if self.deployments.generator.max_ongoing_requests < self.batching.max_batch_size:
            raise ValueError("deployments.generator.max_ongoing_requests must be at least batching.max_batch_size, or batches never fill")
        if self.retrieval.top_k > self.retrieval.max_top_k:
            raise ValueError("retrieval.top_k must not exceed retrieval.max_top_k")
        reserved = {self.model.name, self.model.base_alias}
        clash = reserved & set(self.adapters.static)
        if clash:
            raise ValueError(f"static adapter name(s) {sorted(clash)} clash with model.name/model.base_alias")
        return self

    # -- derived paths ---------------------------------------------------------------------------
    def kb_root(self) -> str:
        from clinitune.artifacts.knowledge_base import store_root

        return store_root(self.workdir, self.retrieval.kb_root)

    def audit_path(self) -> str:
        return self.audit.path or str(Path(self.workdir) / "audit" / "audit.jsonl")

    def resolved(self, base: str | Path | None = None) -> "ServeArgs":
        """A copy with every relative path made absolute against ``base`` (default: the working directory).

        Replicas may run elsewhere (another directory or node): paths are fixed when the app is built.
        """
        root = Path(base or Path.cwd())

        def fix(p: str | None) -> str | None:
            if p is None or "://" in p:
                return p
            q = Path(p).expanduser()
            return str(q if q.is_absolute() else (root / q).resolve())

        data = self.model_dump()
        data["workdir"] = fix(self.workdir)
        data["retrieval"]["kb_root"] = fix(self.retrieval.kb_root)
        data["audit"]["path"] = fix(self.audit.path)
        data["adapters"]["static"] = {k: fix(v) for k, v in self.adapters.static.items()}
        if self.adapters.registry is not None:
            reg = data["adapters"]["registry"]
            reg["pointer_file"] = fix(reg["pointer_file"])
            uri = reg["tracking_uri"]
            if uri and uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
                reg["tracking_uri"] = "sqlite:///" + fix(uri.removeprefix("sqlite:///"))
        base_model = self.model.base
        if "/" in base_model or base_model.startswith("."):
            data["model"]["base"] = fix(base_model)
        return ServeArgs.model_validate(data)


class HttpOptions(StrictModel):
    """Where Serve's HTTP proxy listens."""

    host: str = Field("127.0.0.1", description="Bind address (0.0.0.0 to accept connections from other machines).")
    port: int = Field(8000, ge=1, le=65535, description="HTTP port.")
    request_timeout_s: float | None = Field(None, gt=0, description="End-to-end timeout per request at the proxy; null means none.")


class ApplicationSpec(StrictModel):
    """The Clinitune application entry of a Serve config file."""

    name: str = Field("clinitune", description="Serve application name.")
    route_prefix: str = Field("/", description="URL prefix the application is served under.")
    import_path: Literal["clinitune.serve.app:build_app"] = Field(IMPORT_PATH, description="The application builder (fixed).")
    runtime_env: dict | None = Field(None, description="Ray runtime environment for the application's replicas (e.g. env_vars).")
    args: ServeArgs = Field(default_factory=ServeArgs, description="Clinitune's settings for the application.")


class ServeAppConfig(StrictModel):
    """A Ray Serve config file with one Clinitune application."""

    proxy_location: Literal["HeadOnly", "EveryNode", "Disabled"] = Field("EveryNode", description="Where Serve runs HTTP proxies.")
    http_options: HttpOptions = Field(default_factory=HttpOptions, description="HTTP proxy settings.")
    applications: list[ApplicationSpec] = Field(default_factory=lambda: [ApplicationSpec()], min_length=1, max_length=1, description="Exactly one Clinitune application.")

    @property
    def app(self) -> ApplicationSpec:
        return self.applications[0]
