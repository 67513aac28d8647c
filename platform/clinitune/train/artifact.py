"""What a training run hands on: its final checkpoint packed as a model artifact.

The layout and descriptor are :mod:`clinitune.artifacts.model`'s; this module fills the
descriptor from the run's config and dataset and reads it back for the train stage's callers.
"""

from __future__ import annotations

from pathlib import Path

from clinitune.artifacts.model import (
    ADAPTER_DIR, MODEL_DIR, ArtifactDescriptor, adapter_kind, read_descriptor, write_model_artifact,
)
from clinitune.train.config import TrainConfig


def write_artifact(out: Path, *, cfg: TrainConfig, model_dir: Path, checkpoint_dir: Path, dataset_manifest: dict,
                   metrics: dict, history: list[dict], run_name: str, storage_path: str,
                   mlflow_run_id: str | None, tracking_uri: str | None) -> Path:
    """Assemble the artifact from the final checkpoint; replaces ``out`` only when complete."""
    kind = adapter_kind(cfg.method)
    weights = Path(checkpoint_dir) / (ADAPTER_DIR if kind == "adapter" else MODEL_DIR)
    if not weights.is_dir():
        raise RuntimeError(f"the final checkpoint {checkpoint_dir} has no {weights.name}/ directory")
    descriptor = ArtifactDescriptor(
        kind=kind,
        method=cfg.method,
        base_model=cfg.model,
        base_model_path=str(model_dir),
        task=dataset_manifest.get("task", {}).get("name"),
        dataset_hash=dataset_manifest.get("dataset_hash"),
        source=dataset_manifest.get("source", {}),
        max_seq_len=dataset_manifest.get("max_seq_len"),
        system_prompt=dataset_manifest.get("system_prompt"),
        run_name=run_name,
        storage_path=storage_path,
        checkpoint=str(checkpoint_dir),
        mlflow_run_id=mlflow_run_id,
        mlflow_tracking_uri=tracking_uri,
        metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float))},
    )
    return write_model_artifact(out, descriptor=descriptor, weights_dir=weights, tokenizer_from=model_dir,
                                training_config=cfg.model_dump(mode="json"), dataset_manifest=dataset_manifest,
                                metrics=metrics, history=history)


def load_artifact(path: str | Path) -> dict:
    """The descriptor of an artifact directory (a UserError when ``path`` is not one)."""
    return read_descriptor(path)
