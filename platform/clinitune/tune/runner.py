"""``run_tune``: Ray Tune over fine-tuning runs, each trial a Ray Train ``TorchTrainer``.

Train V2 runs under Tune as a *function trainable*: each trial's function builds its finetune
config from the sampled values, calls ``run_finetune`` with ``TuneReportCallback`` (so every
report of the trial's rank-0 worker reaches Tune and ASHA), then reports the artifact path. The
study is an MLflow parent run; every trial is a child run. At the end the best completed trial's
artifact and config are exported.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from clinitune.artifacts.model import DESCRIPTOR
from clinitune.artifacts.publish import publish_whole
from clinitune.config import apply_dotted, config_hash
from clinitune.errors import ConfigError, UserError
from clinitune.train.config import TrainConfig
from clinitune.tune.config import ParamSpec, TuneConfig

log = logging.getLogger(__name__)

# the trial's identity and storage are set per trial; searching them makes no sense
FIXED_PATHS = ("checkpoint.run_name", "checkpoint.storage_path", "output_dir", "workdir", "model", "method")


@dataclass
class TuneOutcome:
    """What a study produced."""

    name: str
    best_trial: str
    best_config: dict
    best_metric: float
    artifact_dir: Path
    trials: list[dict] = field(default_factory=list)


def _path_exists(path: str) -> bool:
    from pydantic import BaseModel

    model: Any = TrainConfig
    for part in path.split("."):
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return False
        ann = model.model_fields[part].annotation
        model = ann
    return True


def check_search_space(cfg: TuneConfig) -> None:
    """Every key names a finetune field, and a value drawn from each distribution validates."""
    if not cfg.search_space:
        raise ConfigError("search_space is empty.", fix="add at least one parameter, e.g. training.learning_rate.")
    base = cfg.finetune.model_dump(mode="json")
    for path, spec in cfg.search_space.items():
        if path in FIXED_PATHS or path.startswith("scaling.") or path.startswith("data."):
            raise ConfigError(f"search_space.{path}: this key cannot be searched.",
                              fix="search training, lora, quantization, eval or deepspeed settings.")
        if not _path_exists(path):
            raise ConfigError(f"search_space.{path}: no such finetune config key.",
                              fix="use a dotted path such as training.learning_rate, lora.r, lora.alpha, lora.dropout, training.epochs.")
        for value in _probe_values(spec):
            try:
                TrainConfig.model_validate(apply_dotted(base, {path: value}, source=f"search_space.{path}"))
            except Exception as err:
                raise ConfigError(f"search_space.{path}: value {value!r} is not valid for that key ({type(err).__name__}).",
                                  fix="correct the range or values.") from None


def _probe_values(spec: ParamSpec) -> list:
    if spec.type in ("choice", "grid"):
        return list(spec.values or [])
    if spec.type == "randint":
        return [int(spec.low), int(spec.high) - 1]
    return [spec.low, spec.high]


def tune_space(cfg: TuneConfig) -> dict:
    from ray import tune

    space = {}
    for path, s in cfg.search_space.items():
        if s.type == "loguniform":
            space[path] = tune.loguniform(s.low, s.high)
        elif s.type == "uniform":
            space[path] = tune.uniform(s.low, s.high)
        elif s.type == "randint":
            space[path] = tune.randint(int(s.low), int(s.high))
        elif s.type == "choice":
            space[path] = tune.choice(s.values)
        else:
            space[path] = tune.grid_search(s.values)
    return space


def trial_run_name(study: str, trial_id: str) -> str:
    """The training run name (and MLflow ``clinitune.run_name`` tag) of one trial of ``study``."""
    return f"{study}-{trial_id}"


def study_name(cfg: TuneConfig) -> str:
    return cfg.name or f"tune-{config_hash(cfg)[:12]}"


def max_concurrency(cfg: TuneConfig) -> int:
    """Trials at once: the configured bound and what the cluster's resources hold."""
    import ray

    s = cfg.finetune.scaling
    res = ray.cluster_resources()
    per_cpu = s.num_workers * s.cpus_per_worker + cfg.trial_driver_cpus
    bound = int(res.get("CPU", 0) // per_cpu) if per_cpu > 0 else cfg.num_samples
    if s.use_gpu:
        bound = min(bound, int(res.get("GPU", 0) // (s.num_workers * s.gpus_per_worker)))
    if bound < 1:
        raise UserError(f"one trial needs {per_cpu:g} CPUs, more than the cluster has.",
                        fix="lower finetune.scaling.num_workers / cpus_per_worker or trial_driver_cpus.")
    return max(1, min(bound, cfg.max_concurrent_trials or bound, cfg.num_samples))


def _metric_reports(base_cls: type, metric: str):
    """A ``TuneReportCallback`` that forwards only reports carrying the searched metric.

    Progress reports between evaluations have ``train_loss`` but no ``val_loss``; ASHA and the
    searchers need the metric in every result Tune sees, and Tune's strict check fails a trial
    otherwise. Dropping those reports (they are still in MLflow) keeps the check on.
    """

    class MetricReportCallback(base_cls):
        def after_report(self, run_context, metrics, checkpoint):
            if metrics and metric in metrics[0]:
                super().after_report(run_context, metrics, checkpoint)

    return MetricReportCallback()


def _trial(config: dict, *, base: dict, name: str, metric: str, storage: str, trials_dir: str,
           parent_run_id: str | None) -> None:
    """One trial: a full fine-tuning run whose reports reach Tune."""
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    from clinitune.train.artifact import load_artifact
    from clinitune.train.trainer import run_finetune

    trial_id = tune.get_context().get_trial_id()
    d = apply_dotted(base, config)
    d["checkpoint"]["run_name"] = trial_run_name(name, trial_id)
    d["checkpoint"]["storage_path"] = storage
    d["output_dir"] = str(Path(trials_dir) / trial_id / "artifact")
    cfg = TrainConfig.model_validate(d)
    artifact = run_finetune(cfg, callbacks=[_metric_reports(TuneReportCallback, metric)], parent_run_id=parent_run_id)
    metrics = load_artifact(artifact)["metrics"]
    tune.report({**metrics, "artifact_dir": str(artifact)})


def _export(best_artifact: Path, out: Path, best_cfg: dict, summary: dict) -> Path:
    """The best trial's artifact plus the study's best config and summary, replacing ``out`` whole
    (a crash leaves the previous export, never none)."""
    with publish_whole(out, require=DESCRIPTOR) as staging:
        shutil.copytree(best_artifact, staging, dirs_exist_ok=True)
        (staging / "best_config.yaml").write_text(yaml.safe_dump(best_cfg, sort_keys=False), encoding="utf-8")
        (staging / "tune_summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return out


def run_tune(cfg: TuneConfig) -> TuneOutcome:
    """Pre-flight once, run the study, export the best trial's artifact and config."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from clinitune import tracking
    from clinitune.train.loop import plan_steps
    from clinitune.train.trainer import prepare

    check_search_space(cfg)
    if cfg.metric == "val_loss" and cfg.finetune.eval.every_n_steps is None and cfg.asha.enabled:
        raise ConfigError("asha needs val_loss during training, but finetune.eval.every_n_steps is null.",
                          fix="set finetune.eval.every_n_steps (e.g. 20) or asha.enabled: false.")
    prep = prepare(cfg.finetune)  # model, data (built once, cached for every trial) and resources
    if cfg.metric == "val_loss" and prep.manifest["splits"].get("validation", {}).get("sequences", 0) == 0:
        raise UserError("the search minimises val_loss but the dataset has no validation examples.",
                        fix="add a validation split to finetune.data.source, or set metric: train_loss.")
    name = study_name(cfg)
    workdir = Path(cfg.finetune.workdir).expanduser()
    storage = cfg.storage_path or str((workdir / "tune").resolve())
    study_dir = Path(storage) / name
    trials_dir = study_dir / "trials"
    _, _, total = plan_steps(cfg.finetune, prep.manifest["splits"]["train"]["sequences"], cfg.finetune.scaling.num_workers)

    uri = parent = None
    if cfg.finetune.tracking.enabled:
        uri = tracking.resolve_tracking_uri(cfg.finetune.tracking.tracking_uri, workdir)
        parent = tracking.start_run(uri, cfg.finetune.tracking.experiment, name, artifact_root=workdir / "mlartifacts",
                                    tags={"clinitune.stage": "tune", "clinitune.study": name})
        tracking.log_params(uri, parent, {"search": cfg.search, "num_samples": cfg.num_samples, "metric": cfg.metric,
                                          "search_space": json.dumps({k: v.model_dump() for k, v in cfg.search_space.items()})})

    scheduler = None
    if cfg.asha.enabled:
        scheduler = ASHAScheduler(time_attr="step", max_t=cfg.asha.max_t or max(total, 1),
                                  grace_period=cfg.asha.grace_period, reduction_factor=cfg.asha.reduction_factor,
                                  stop_last_trials=False)  # a trial at max_t still reports its artifact
    search_alg = None
    if cfg.search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        search_alg = OptunaSearch(seed=cfg.seed)
    elif cfg.search == "random":
        from ray.tune.search.basic_variant import BasicVariantGenerator

        search_alg = BasicVariantGenerator(random_state=cfg.seed)
    base = cfg.finetune.model_dump(mode="json")
    trainable = tune.with_parameters(_trial, base=base, name=name, metric=cfg.metric, storage=str(Path(storage) / name / "runs"),
                                     trials_dir=str(trials_dir), parent_run_id=parent)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"CPU": cfg.trial_driver_cpus}),
        param_space=tune_space(cfg),
        tune_config=tune.TuneConfig(metric=cfg.metric, mode=cfg.mode, search_alg=search_alg, scheduler=scheduler,
                                    num_samples=cfg.num_samples, max_concurrent_trials=max_concurrency(cfg)),
        run_config=tune.RunConfig(name=name, storage_path=storage, failure_config=tune.FailureConfig(max_failures=0),
                                  verbose=0),
    )
    try:
        grid = tuner.fit()
    except BaseException:
        if parent:
            tracking.end_run(uri, parent, "FAILED")
        raise

    trials: list[dict] = []
    for r in grid:
        m = r.metrics or {}
        trial_id = m.get("trial_id") or Path(r.path).name
        status = "completed" if m.get("artifact_dir") else ("error" if r.error else "stopped_early")
        trials.append({"trial_id": trial_id, "status": status, "config": r.config, "metric": m.get(cfg.metric),
                       "step": m.get("step"), "artifact_dir": m.get("artifact_dir"),
                       "error": type(r.error).__name__ if r.error else None})
    done = [t for t in trials if t["status"] == "completed" and isinstance(t["metric"], (int, float)) and math.isfinite(t["metric"])]
    if parent:
        _close_trial_runs(uri, cfg.finetune.tracking.experiment, parent,
                          stopped={trial_run_name(name, t["trial_id"]) for t in trials if t["status"] == "stopped_early"})
    if not done:
        if parent:
            tracking.end_run(uri, parent, "FAILED")
        errors = sorted({t["error"] for t in trials if t["error"]})
        raise RuntimeError(f"study '{name}': no trial completed (errors: {', '.join(errors) or 'none'}); see {study_dir}")
    best = (min if cfg.mode == "min" else max)(done, key=lambda t: t["metric"])
    best_cfg = apply_dotted(base, best["config"])
    out = Path(cfg.output_dir).expanduser() if cfg.output_dir else workdir / "models" / f"{name}-best"
    summary = {"study": name, "metric": cfg.metric, "mode": cfg.mode, "best_trial": best["trial_id"],
               "best_metric": best["metric"], "best_params": best["config"], "trials": trials}
    artifact = _export(Path(best["artifact_dir"]), out, best_cfg, summary)
    if parent:
        tracking.log_metrics(uri, parent, {f"best_{cfg.metric}": best["metric"],
                                           "trials_completed": len(done),
                                           "trials_stopped_early": sum(t["status"] == "stopped_early" for t in trials)}, 0)
        tracking.log_params(uri, parent, {f"best.{k}": v for k, v in best["config"].items()})
        tracking.client(uri).log_artifact(parent, str(artifact / "tune_summary.json"))
        tracking.set_tags(uri, parent, {"clinitune.artifact_dir": str(artifact.resolve())})
        tracking.end_run(uri, parent, "FINISHED")
    return TuneOutcome(name=name, best_trial=best["trial_id"], best_config=best_cfg, best_metric=best["metric"],
                       artifact_dir=artifact, trials=trials)


def _close_trial_runs(uri: str, experiment: str, parent: str, stopped: set[str], settle_s: float = 5.0) -> None:
    """Trials ASHA stopped were killed mid-run: mark their MLflow runs KILLED.

    Depending on when the stop lands, a stopped trial's run is left RUNNING (its process was
    killed) or was ended FAILED (the stop surfaced as an exception in ``trainer.fit``); both mean
    "stopped by the scheduler" here. Runs of trials that really failed stay FAILED. A stopped
    trial's actor can still be unwinding when the study returns, so the runs are re-checked for
    ``settle_s`` seconds (its own late "FAILED" only ends a run still RUNNING).
    """
    from clinitune import tracking

    c = tracking.client(uri)
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        return
    deadline = time.monotonic() + settle_s
    while True:
        for run in c.search_runs([exp.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent}'", max_results=10000):
            if run.info.status == "RUNNING" or (run.info.status == "FAILED" and run.data.tags.get("clinitune.run_name") in stopped):
                c.set_terminated(run.info.run_id, status="KILLED")
        if time.monotonic() >= deadline:
            return
        time.sleep(1.0)
