"""MLflow helpers shared by training, tuning, evaluation and the registry.

The default tracking store is a SQLite file in the working directory
(``sqlite:///<workdir>/mlflow.db``): no server to run on a laptop, and a team points
``tracking_uri`` at its MLflow server on a cluster. Runs are created by the driver, which passes
the run id to the rank-0 worker; workers log through ``MlflowClient`` with an explicit URI so
nothing depends on process-global MLflow state.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger(__name__)

_PARAM_MAX = 500  # MLflow's limit on a param value's length


def default_tracking_uri(workdir: str | Path) -> str:
    db = Path(workdir).expanduser().resolve() / "mlflow.db"
    return f"sqlite:///{db}"


def resolve_tracking_uri(uri: str | None, workdir: str | Path) -> str:
    """``uri`` as given, else ``$MLFLOW_TRACKING_URI``, else the SQLite file in ``workdir``."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(workdir)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return uri


def client(uri: str):
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def experiment_id(uri: str, name: str, artifact_root: str | Path | None = None) -> str:
    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return c.create_experiment(name, artifact_location=Path(artifact_root).resolve().as_uri() if artifact_root else None)
    except Exception:  # created concurrently by another process
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def start_run(uri: str, experiment: str, run_name: str, *, tags: Mapping[str, str] | None = None,
              parent_run_id: str | None = None, artifact_root: str | Path | None = None) -> str:
    """Create a run and return its id (a child of ``parent_run_id`` when given)."""
    c = client(uri)
    all_tags = dict(tags or {})
    all_tags["mlflow.runName"] = run_name
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    run = c.create_run(experiment_id(uri, experiment, artifact_root), run_name=run_name, tags=all_tags)
    return run.info.run_id


def find_run(uri: str, experiment: str, tag_key: str, tag_value: str) -> str | None:
    """The id of the newest run in ``experiment`` tagged ``tag_key=tag_value`` (to continue it on resume)."""
    c = client(uri)
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = c.search_runs([exp.experiment_id], filter_string=f"tags.`{tag_key}` = '{tag_value}'",
                         order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].info.run_id if runs else None


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = str(v)[:_PARAM_MAX]
    return out


def log_params(uri: str, run_id: str, params: Mapping[str, Any]) -> None:
    from mlflow.entities import Param

    c = client(uri)
    existing = c.get_run(run_id).data.params
    items = [Param(k, v) for k, v in flatten(params).items() if k not in existing]
    for i in range(0, len(items), 100):
        c.log_batch(run_id, params=items[i: i + 100])


def log_metrics(uri: str, run_id: str, metrics: Mapping[str, Any], step: int) -> None:
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [Metric(k, float(v), now, int(step)) for k, v in metrics.items()
             if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))]
    if items:
        client(uri).log_batch(run_id, metrics=items)


def set_tags(uri: str, run_id: str, tags: Mapping[str, Any]) -> None:
    c = client(uri)
    for k, v in tags.items():
        c.set_tag(run_id, k, str(v))


def log_artifacts(uri: str, run_id: str, local_dir: str | Path, artifact_path: str | None = None) -> None:
    client(uri).log_artifacts(run_id, str(local_dir), artifact_path)


def end_run(uri: str, run_id: str, status: str = "FINISHED", *, only_if_running: bool = False) -> None:
    """End a run with ``status``. ``only_if_running`` leaves a run someone else already ended as it
    is (a trial the scheduler stopped is KILLED by the study; its late failure must not undo that)."""
    c = client(uri)
    if only_if_running and c.get_run(run_id).info.status != "RUNNING":
        return
    c.set_terminated(run_id, status=status)
