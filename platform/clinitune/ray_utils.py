"""Connecting to Ray: the cluster a job names, the one running on this machine, or a local instance.

``connect(address)`` decides, in this order:

* ``"local"``: always a fresh local instance on this machine, sized by ``num_cpus``;
* an address (the argument, else ``$RAY_ADDRESS``, which ``ray job submit`` sets): join that
  cluster, passing only what Ray accepts when joining (never ``num_cpus`` or ``_system_config``);
  an address nobody answers at is a one-line UserError saying how to start or point at a cluster;
* nothing: the cluster started on this machine with ``ray start --head`` (Ray records its address
  in ``<temp dir>/ray_current_cluster``; joined as Ray joins it, with this machine's token when
  the cluster uses token authentication), else a fresh local instance.

A cluster that answers but refuses to be joined (token authentication without the token, most
often) is a one-line UserError naming the cause; the core's retry lines are held back.

Joining prints one line naming the cluster and its resources. Inside a job that runs the package
of the checkout it was submitted from rather than one installed on the nodes (``jobs/_entry.py``),
the package is shipped to every worker with the runtime env's ``py_modules``.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

from clinitune.errors import UserError

log = logging.getLogger(__name__)

LOCAL = "local"
LOCAL_SYSTEM_CONFIG = {"idle_worker_killing_time_threshold_ms": 60_000}
# Set by jobs/_entry.py when it imported the package from the job's working directory.
SHIP_PACKAGE_ENV = "CLINITUNE_SHIP_PACKAGE"


def thread_env(threads: int) -> dict:
    """A runtime env that gives a Ray worker ``threads`` OpenMP/MKL threads from process start.

    Ray sets ``OMP_NUM_THREADS`` to a worker's reserved CPUs (1 for a 1-CPU actor) before torch
    loads; a later ``torch.set_num_threads(n)`` in the training thread does not fully undo it
    (measured: LoRA on SmolLM2 at 97-106 tokens/s in a Ray Train worker vs 141 with the env set,
    2-core CPU). Workers that set torch threads above their reservation need this env.
    """
    n = str(max(1, int(threads)))
    return {"env_vars": {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n}}


def running_cluster() -> str | None:
    """The address of the cluster ``ray start --head`` started on this machine, if it still answers."""
    from ray._private.utils import read_ray_address

    address = read_ray_address()
    return address if address and _answers(address) is None else None


def _answers(address: str, timeout: float = 3.0) -> str | None:
    """None when something listens at ``address`` (host:port or ray://host:port), else why not."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return None  # not host:port (e.g. "auto"): let Ray resolve it
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return None
    except OSError as err:
        return err.strerror or type(err).__name__


_POINT_AT_A_CLUSTER = ("start one (`ray start --head` on the head node, or cluster/local_cluster.sh start on this machine), "
                      "point --ray-address / ray_address / $RAY_ADDRESS at a running head, "
                      "or pass --ray-address local for a fresh local Ray on this machine.")


def _unreachable(address: str, why: str) -> UserError:
    return UserError(f"no Ray cluster answers at '{address}' ({why}).", fix=_POINT_AT_A_CLUSTER)


def _not_joined(address: str, err: Exception, core_said: str) -> UserError:
    """Why a cluster that answers at ``address`` could not be joined, from the error and the core's lines."""
    if "InvalidAuthToken" in core_said or "Unauthenticated" in core_said:
        return UserError(
            f"the Ray cluster at '{address}' uses token authentication and refused this client (no token, or not its token).",
            fix="set RAY_AUTH_MODE=token and give this machine the cluster's token: the file ~/.ray/auth_token "
                "(or $RAY_AUTH_TOKEN_PATH) the cluster's nodes use, or $RAY_AUTH_TOKEN (`ray get-auth-token` on the head prints it).")
    first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
    return UserError(f"could not join the Ray cluster at '{address}': {first}", fix=_POINT_AT_A_CLUSTER)


@contextmanager
def _stderr_held():
    """Hold back what is written to fd 2 (the core's connection retries print a line a second);
    yields a function returning it. The caller replays it when the connection worked."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield lambda: (held.flush(), held.seek(0), held.read().decode("utf-8", "replace"))[-1]
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def describe_cluster() -> str:
    """``N node(s): C CPUs, G GPUs, M GiB memory`` of the connected cluster."""
    import ray

    res = ray.cluster_resources()
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    return (f"{nodes} node{'s' if nodes != 1 else ''}: {res.get('CPU', 0):g} CPUs, {res.get('GPU', 0):g} GPUs, "
            f"{res.get('memory', 0) / 2**30:.1f} GiB memory")


def _job_runtime_env() -> dict[str, Any] | None:
    """``py_modules`` with this package when a job runs its checkout's package, not an installed one."""
    if os.environ.get(SHIP_PACKAGE_ENV) != "1":
        return None
    import clinitune

    return {"py_modules": [str(Path(clinitune.__file__).resolve().parent)]}


def connect(address: str | None = None, *, num_cpus: int | None = None, quiet: bool = True,
            say: Callable[[str], None] | None = None, **kwargs: Any) -> None:
    """Join the Ray cluster at ``address`` (see the module doc), else start a local one. Safe to call twice."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    explicit = address or os.environ.get("RAY_ADDRESS") or None
    target = explicit or running_cluster() or LOCAL
    # The cluster found on this machine is joined as Ray joins it ("auto": with this machine's token
    # when it uses token authentication); an address given is joined as given.
    init_address = target if explicit else "auto"
    init_kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": not quiet, **kwargs}
    if quiet:
        init_kwargs.setdefault("logging_level", logging.WARNING)  # the one line below says where we are
    if target == LOCAL:
        init_kwargs.setdefault("include_dashboard", False)
        # Keep idle workers for a minute: Ray's default (1 s) restarts worker processes between
        # every shuffle stage, seconds each on a small machine.
        init_kwargs.setdefault("_system_config", LOCAL_SYSTEM_CONFIG)
        if num_cpus is not None:
            init_kwargs["num_cpus"] = num_cpus
        ray.init(address=LOCAL, **init_kwargs)
    else:
        init_kwargs.pop("object_store_memory", None)  # a cluster's own setting
        why = _answers(target)
        if why is not None:
            raise _unreachable(target, why)
        runtime_env = _job_runtime_env()
        if runtime_env is not None:
            init_kwargs["runtime_env"] = runtime_env
        failed = None
        with _stderr_held() as held:
            try:
                ray.init(address=init_address, **init_kwargs)
            except ConnectionError as err:
                failed = err
            core_said = held()
        if failed is not None:
            raise _not_joined(target, failed, core_said) from None
        sys.stderr.write(core_said)
        say(f"joined Ray cluster at {target} ({describe_cluster()})")
    if quiet:
        from ray.data import DataContext

        DataContext.get_current().enable_progress_bars = False
        # Ray Data narrates every operator at INFO; our CLI reports progress itself.
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        logging.getLogger("ray").setLevel(logging.WARNING)
    log.info("connected to Ray: %s", ray.cluster_resources())
