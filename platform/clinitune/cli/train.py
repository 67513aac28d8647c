"""``clinitune train``: fine-tune on Ray Train (LoRA, QLoRA, full with DeepSpeed) from one config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from clinitune.errors import UserError


def train(
    config: Path = typer.Option(..., "--config", "-c", help="Finetune config YAML (see jobs/configs/train.yaml)."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", "-o", help="Override output_dir (the model artifact)."),
    run_name: Optional[str] = typer.Option(None, "--run-name", help="Override checkpoint.run_name (the same name resumes)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Override scaling.ray_address: a cluster address, or 'local' for a fresh local Ray."),
) -> None:
    """Build the data (cached), train, and write the model artifact; re-running the same command resumes."""
    from clinitune.config import load_config
    from clinitune.train.config import TrainConfig
    from clinitune.train.trainer import run_finetune

    try:
        cfg = load_config(config, TrainConfig, {"output_dir": str(output_dir) if output_dir else None})
        if run_name:
            cfg.checkpoint.run_name = run_name
        if ray_address:
            cfg.scaling.ray_address = ray_address
        artifact = run_finetune(cfg)
    except UserError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(UserError.exit_code) from None
    final = json.loads((artifact / "metrics.json").read_text())["final"]
    shown = {k: round(v, 4) for k, v in final.items() if k in ("train_loss", "val_loss", "best_val_loss", "step", "tokens_per_s")}
    typer.echo(f"metrics: {shown}")
    typer.echo(f"artifact: {artifact}")


def register(app: typer.Typer) -> None:
    app.command("train", help="Fine-tune a base model on Ray Train (LoRA, QLoRA, full/DeepSpeed); resumes a stopped run.")(train)
    app.command("finetune", hidden=True, help="Another spelling of `clinitune train`.")(train)
