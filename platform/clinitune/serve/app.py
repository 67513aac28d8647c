"""Build and run the Clinitune Serve application.

``build_app(args)`` is the application builder named in every file under ``serving/``::

    serve run serving/local.yaml                                   # the config file as Serve reads it
    serve run clinitune.serve.app:build_app config=serving/local.yaml   # the same, by builder arguments
    clinitune serve --config serving/local.yaml                    # starts Ray and Serve, then runs it

``args`` is either ``{"config": "<a serving YAML>"}`` or the application's settings themselves
(:class:`~clinitune.serve.config.ServeArgs`, as in the file's ``applications[0].args``). Relative
paths are made absolute against the working directory of the process that builds the application
(``serve run`` / ``clinitune serve``: where you run it); for ``serve deploy`` onto a remote cluster,
use absolute paths (or shared storage URIs for knowledge bases).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from clinitune.config import load_config, validate_config
from clinitune.serve.config import ServeAppConfig, ServeArgs

log = logging.getLogger(__name__)


def load_serve_config(path: str | Path) -> ServeAppConfig:
    return load_config(path, ServeAppConfig)


def resolve_args(args: dict[str, Any] | ServeArgs | None) -> ServeArgs:
    """Builder arguments -> validated settings with absolute paths."""
    if isinstance(args, ServeArgs):
        return args.resolved()
    args = dict(args or {})
    if "config" in args:
        path = args.pop("config")
        if args:
            raise ValueError(f"pass either config=<file> or the settings themselves, not both (got {sorted(args)})")
        return load_serve_config(path).app.args.resolved()
    return validate_config(args, ServeArgs, source="application args").resolved()


def base_model_dir(cfg: ServeArgs) -> str:
    """The base model's local directory (the embedded default is converted once and cached)."""
    from clinitune.models import resolve_model

    return str(resolve_model(cfg.model.base))


def build_app(args: dict[str, Any] | ServeArgs | None = None):
    """The Serve application: Gateway (ingress) -> Generator, Retriever, Coordinator (shared limits)."""
    from clinitune.serve.coordinator import Coordinator
    from clinitune.serve.gateway import Gateway
    from clinitune.serve.generator import Generator
    from clinitune.serve.retriever import Retriever

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cfg = resolve_args(args)
    plain = cfg.model_dump(mode="json")
    d = cfg.deployments
    gen_opts = d.generator.serve_options()
    if cfg.model.torch_threads:  # threads above the replica's CPU reservation need the env at process start
        from clinitune.ray_utils import thread_env

        gen_opts["ray_actor_options"]["runtime_env"] = thread_env(cfg.model.torch_threads)
    generator = Generator.options(**gen_opts).bind(plain, base_model_dir(cfg))
    retriever = None
    if cfg.retrieval.deploy:
        from clinitune.rag.embed import QUERY_PROCESS_ENV

        ret_opts = d.retriever.serve_options()
        ret_opts["ray_actor_options"]["runtime_env"] = {"env_vars": dict(QUERY_PROCESS_ENV)}
        retriever = Retriever.options(**ret_opts).bind(plain)
    coordinator = Coordinator.options(**d.coordinator.serve_options()).bind(cfg.idempotency.model_dump(mode="json"))
    return Gateway.options(**d.gateway.serve_options()).bind(plain, generator, retriever, coordinator)


def run(config: ServeAppConfig, *, ray_address: str | None = None, blocking: bool = True) -> str:
    """Start (or join) Ray and Serve, deploy the application, and return its base URL."""
    from ray import serve

    from clinitune.ray_utils import connect

    connect(ray_address)
    http = config.http_options
    serve.start(http_options={"host": http.host, "port": http.port, **(
        {"request_timeout_s": http.request_timeout_s} if http.request_timeout_s else {})},
        proxy_location=config.proxy_location)
    spec = config.app
    serve.run(build_app(spec.args), name=spec.name, route_prefix=spec.route_prefix, blocking=blocking)
    return f"http://{http.host}:{http.port}{spec.route_prefix.rstrip('/')}"
