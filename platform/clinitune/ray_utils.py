"""Connecting to Ray: a cluster when one is named, else a local one sized for this machine."""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger(__name__)

LOCAL_SYSTEM_CONFIG = {"idle_worker_killing_time_threshold_ms": 60_000}


def thread_env(threads: int) -> dict:
    """A runtime env that gives a Ray worker ``threads`` OpenMP/MKL threads from process start.

    Ray sets ``OMP_NUM_THREADS`` to a worker's reserved CPUs (1 for a 1-CPU actor) before torch
    loads; a later ``torch.set_num_threads(n)`` in the training thread does not fully undo it
    (measured: LoRA on SmolLM2 at 97-106 tokens/s in a Ray Train worker vs 141 with the env set,
    2-core CPU). Workers that set torch threads above their reservation need this env.
    """
    n = str(max(1, int(threads)))
    return {"env_vars": {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n}}


def connect(address: str | None = None, *, num_cpus: int | None = None, quiet: bool = True, **kwargs: Any) -> None:
    """Join the Ray cluster at ``address`` (or ``$RAY_ADDRESS``), else start a local one.

    Safe to call twice. Inside a Ray job (``ray job submit``) Ray has already set RAY_ADDRESS.
    """
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    init_kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": not quiet, **kwargs}
    if address:
        init_kwargs["address"] = address
        init_kwargs.pop("object_store_memory", None)  # a cluster's own setting
    else:
        init_kwargs.setdefault("include_dashboard", False)
        # Keep idle workers for a minute: Ray's default (1 s) restarts worker processes between
        # every shuffle stage, seconds each on a small machine.
        init_kwargs.setdefault("_system_config", LOCAL_SYSTEM_CONFIG)
        if num_cpus is not None:
            init_kwargs["num_cpus"] = num_cpus
    ray.init(**init_kwargs)
    if quiet:
        from ray.data import DataContext

        DataContext.get_current().enable_progress_bars = False
        # Ray Data narrates every operator at INFO; our CLI reports progress itself.
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        logging.getLogger("ray").setLevel(logging.WARNING)
    log.info("connected to Ray: %s", ray.cluster_resources())
