"""The model artifact a training run hands to evaluation and the registry (issue 5).

Layout (published whole from a staging directory)::

    clinitune_artifact.json   kind (adapter | full), method, base model, dataset hash and lineage, run ids
    adapter/                  LoRA / QLoRA: PEFT adapter (adapter_config.json, adapter_model.safetensors)
    model/                    full fine-tuning: Hugging Face weights + tokenizer, loadable on its own
    tokenizer/                tokenizer files and chat template of the base model
    config.json               the resolved finetune config
    dataset_manifest.json     the built dataset's manifest (counts, lineage)
    metrics.json              final metrics and the reported history

``load_artifact(dir)`` reads the descriptor back.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path

from clinitune.data.build import TOKENIZER_FILES
from clinitune.errors import UserError
from clinitune.train.config import FinetuneConfig

DESCRIPTOR = "clinitune_artifact.json"


def _copy_tokenizer(model_dir: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, dest / name)


def write_artifact(out: Path, *, cfg: FinetuneConfig, model_dir: Path, checkpoint_dir: Path, dataset_manifest: dict,
                   metrics: dict, history: list[dict], run_name: str, storage_path: str,
                   mlflow_run_id: str | None, tracking_uri: str | None) -> Path:
    """Assemble the artifact from the final checkpoint; replaces ``out`` only when complete."""
    out = Path(out)
    staging = out.parent / f".{out.name}.staging-{uuid.uuid4().hex[:12]}"
    staging.mkdir(parents=True)
    try:
        kind = "adapter" if cfg.method in ("lora", "qlora") else "full"
        src = checkpoint_dir / ("adapter" if kind == "adapter" else "model")
        if not src.is_dir():
            raise RuntimeError(f"the final checkpoint {checkpoint_dir} has no {src.name}/ directory")
        shutil.copytree(src, staging / src.name)
        _copy_tokenizer(model_dir, staging / "tokenizer")
        if kind == "full":
            _copy_tokenizer(model_dir, staging / "model")
        (staging / "config.json").write_text(json.dumps(cfg.model_dump(mode="json"), indent=2), encoding="utf-8")
        (staging / "dataset_manifest.json").write_text(json.dumps(dataset_manifest, indent=2), encoding="utf-8")
        (staging / "metrics.json").write_text(json.dumps({"final": metrics, "history": history}, indent=2), encoding="utf-8")
        descriptor = {
            "format": "clinitune.artifact/1",
            "kind": kind,
            "method": cfg.method,
            "base_model": cfg.model,
            "base_model_path": str(model_dir),
            "task": dataset_manifest.get("task", {}).get("name"),
            "dataset_hash": dataset_manifest.get("dataset_hash"),
            "source": dataset_manifest.get("source", {}),
            "max_seq_len": dataset_manifest.get("max_seq_len"),
            "system_prompt": dataset_manifest.get("system_prompt"),
            "run_name": run_name,
            "storage_path": storage_path,
            "checkpoint": str(checkpoint_dir),
            "mlflow_run_id": mlflow_run_id,
            "mlflow_tracking_uri": tracking_uri,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
        }
        (staging / DESCRIPTOR).write_text(json.dumps(descriptor, indent=2), encoding="utf-8")
        out.parent.mkdir(parents=True, exist_ok=True)
        backup = None
        if out.exists():
            backup = out.parent / f".{out.name}.previous-{uuid.uuid4().hex[:12]}"
            out.rename(backup)
        staging.rename(out)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out


def load_artifact(path: str | Path) -> dict:
    """The descriptor of an artifact directory (a UserError when ``path`` is not one)."""
    p = Path(path) / DESCRIPTOR
    if not p.is_file():
        raise UserError(f"'{path}' is not a Clinitune model artifact (no {DESCRIPTOR}).",
                        fix="pass the directory that `clinitune train` printed.")
    return json.loads(p.read_text(encoding="utf-8"))
