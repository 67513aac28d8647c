"""Driver side of a fine-tuning run: pre-flight, dataset, Ray Train ``TorchTrainer``, MLflow, artifact.

``run_finetune(cfg) -> Path`` is the library entry point the CLI, ``jobs/train.py``, Tune
trials and the demo call. The run's name (``checkpoint.run_name``, default: the config's content
hash) names its directory in storage, so submitting the same config again resumes from the last
checkpoint, and a finished run only re-exports its artifact.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from clinitune.config import config_hash
from clinitune.train.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """Everything resolved and checked before the trainer starts."""

    cfg: TrainConfig
    model_dir: Path
    dataset_dir: Path
    manifest: dict
    run_name: str
    storage_path: str
    status_dir: Path | None
    output_dir: Path


def run_name_for(cfg: TrainConfig) -> str:
    return cfg.checkpoint.run_name or f"ft-{config_hash(cfg)[:12]}"


def storage_path_for(cfg: TrainConfig) -> str:
    if cfg.checkpoint.storage_path:
        sp = cfg.checkpoint.storage_path
        return sp if "://" in sp else str(Path(sp).expanduser().resolve())
    return str((Path(cfg.workdir).expanduser() / "runs").resolve())


def prepare(cfg: TrainConfig) -> Prepared:
    """Pre-flight checks (cheap ones first), then the (cached) dataset build."""
    from clinitune import ray_utils
    from clinitune.artifacts.tokenized import load_manifest
    from clinitune.data.build import build_dataset
    from clinitune.train import preflight

    preflight.check_options(cfg)
    model_dir = preflight.check_model(cfg)
    ray_utils.connect(cfg.scaling.ray_address, num_cpus=cfg.scaling.num_cpus)
    preflight.check_resources(cfg)
    dataset_dir = build_dataset(cfg.data, model_dir)
    manifest = load_manifest(dataset_dir)
    preflight.check_dataset(cfg, manifest)
    name = run_name_for(cfg)
    storage = storage_path_for(cfg)
    status_dir = None if "://" in storage else Path(storage) / name / "workers"
    output = Path(cfg.output_dir).expanduser() if cfg.output_dir else Path(cfg.workdir).expanduser() / "models" / name
    return Prepared(cfg, model_dir, dataset_dir, manifest, name, storage, status_dir, output)


# Splits smaller than this are read once into the object store; larger ones stream from storage every epoch.
IN_MEMORY_BELOW_BYTES = 256 * 2**20


def build_trainer(prep: Prepared, *, tracking: dict | None = None, callbacks: list | None = None):
    """The ``TorchTrainer`` for a prepared run."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from clinitune.artifacts.tokenized import load_split
    from clinitune.ray_utils import thread_env
    from clinitune.train.loop import train_loop_per_worker, worker_threads

    cfg = prep.cfg
    s = cfg.scaling
    has_val = prep.manifest["splits"].get("validation", {}).get("sequences", 0) >= s.num_workers
    # small splits are read once by the driver into the object store; large ones stream from storage
    datasets = {name: load_split(prep.dataset_dir, name, in_memory_below=IN_MEMORY_BELOW_BYTES)
                for name in (("train", "validation") if has_val else ("train",))}
    resources = {"CPU": s.cpus_per_worker}
    if s.use_gpu:
        resources["GPU"] = s.gpus_per_worker
    ingest = ray.train.DataConfig.default_ingest_options()
    ingest.preserve_order = True  # same order after a restart, so the skipped data position is the data trained on
    loop_config = {
        "config": cfg.model_dump(mode="json"),
        "model_dir": str(prep.model_dir),
        "pad_token_id": prep.manifest["pad_token_id"],
        "train_sequences": prep.manifest["splits"]["train"]["sequences"],
        "has_validation": has_val,
        "tracking": tracking,
        "status_dir": str(prep.status_dir) if prep.status_dir else None,
        "report_progress": bool(callbacks),  # metrics-only reports to Ray only when a callback reads them
    }
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config=loop_config,
        scaling_config=ray.train.ScalingConfig(num_workers=s.num_workers, use_gpu=s.use_gpu, resources_per_worker=resources),
        run_config=ray.train.RunConfig(
            name=prep.run_name,
            storage_path=prep.storage_path,
            failure_config=ray.train.FailureConfig(max_failures=s.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=cfg.checkpoint.num_to_keep),
            callbacks=callbacks or [],
            worker_runtime_env=thread_env(worker_threads(cfg)),
        ),
        datasets=datasets,
        dataset_config=ray.train.DataConfig(execution_options=ingest),
    )


def _start_tracking(prep: Prepared, parent_run_id: str | None) -> tuple[str | None, str | None]:
    cfg = prep.cfg
    if not cfg.tracking.enabled:
        return None, None
    from clinitune import tracking

    uri = tracking.resolve_tracking_uri(cfg.tracking.tracking_uri, cfg.workdir)
    run_id = tracking.find_run(uri, cfg.tracking.experiment, "clinitune.run_name", prep.run_name)
    if run_id is None:
        run_id = tracking.start_run(uri, cfg.tracking.experiment, prep.run_name, parent_run_id=parent_run_id,
                                    artifact_root=Path(cfg.workdir).expanduser() / "mlartifacts",
                                    tags={"clinitune.run_name": prep.run_name, "clinitune.stage": "train",
                                          "clinitune.method": cfg.method, "clinitune.dataset_hash": prep.manifest["dataset_hash"]})
    else:
        tracking.client(uri).update_run(run_id, status="RUNNING")
    tracking.log_params(uri, run_id, {**cfg.model_dump(mode="json"), "dataset_hash": prep.manifest["dataset_hash"],
                                      "train_sequences": prep.manifest["splits"]["train"]["sequences"]})
    return uri, run_id


def run_prepared(prep: Prepared, *, callbacks: list | None = None, parent_run_id: str | None = None) -> Path:
    """Train a prepared run and write its artifact; returns the artifact directory."""
    from clinitune import tracking
    from clinitune.artifacts.model import SMALL_FILES
    from clinitune.train.artifact import write_artifact
    from clinitune.train.state import read_state

    cfg = prep.cfg
    if prep.status_dir is not None and prep.status_dir.exists():
        shutil.rmtree(prep.status_dir, ignore_errors=True)  # heartbeats of an earlier attempt
    uri, run_id = _start_tracking(prep, parent_run_id)
    trainer = build_trainer(prep, tracking={"uri": uri, "run_id": run_id} if run_id else None, callbacks=callbacks)
    try:
        result = trainer.fit()
    except BaseException:
        if run_id:
            tracking.end_run(uri, run_id, "FAILED", only_if_running=True)
        raise
    if result.checkpoint is None:
        raise RuntimeError(f"run '{prep.run_name}' finished without a final checkpoint")
    with result.checkpoint.as_directory() as ckpt_dir:
        st = read_state(Path(ckpt_dir))
        metrics = {k: v for k, v in (result.metrics or {}).items() if k != "worker_pid"}
        artifact = write_artifact(
            prep.output_dir, cfg=cfg, model_dir=prep.model_dir, checkpoint_dir=Path(ckpt_dir), dataset_manifest=prep.manifest,
            metrics=metrics, history=st.history, run_name=prep.run_name, storage_path=prep.storage_path,
            mlflow_run_id=run_id, tracking_uri=uri,
        )
    if run_id:
        for name in SMALL_FILES:
            tracking.client(uri).log_artifact(run_id, str(artifact / name))
        tracking.set_tags(uri, run_id, {"clinitune.artifact_dir": str(artifact.resolve())})
        tracking.end_run(uri, run_id, "FINISHED")
    log.info("artifact written to %s", artifact)
    return artifact


def run_finetune(cfg: TrainConfig, *, callbacks: list | None = None, parent_run_id: str | None = None) -> Path:
    """Pre-flight, build the dataset, train on Ray Train, write the artifact; returns the artifact directory."""
    return run_prepared(prepare(cfg), callbacks=callbacks, parent_run_id=parent_run_id)
