"""``clinitune tune``: hyperparameter search over fine-tuning with Ray Tune (ASHA, Optuna)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from clinitune.errors import UserError


def tune(
    config: Path = typer.Option(..., "--config", "-c", help="Tune config YAML (see jobs/configs/tune.yaml)."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", "-o", help="Override output_dir (best artifact)."),
) -> None:
    """Run the study and export the best trial's artifact and config."""
    from clinitune.config import load_config
    from clinitune.tune.config import TuneConfig
    from clinitune.tune.runner import run_tune

    try:
        cfg = load_config(config, TuneConfig, {"output_dir": str(output_dir) if output_dir else None})
        outcome = run_tune(cfg)
    except UserError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(UserError.exit_code) from None
    for t in outcome.trials:
        metric = f"{t['metric']:.4f}" if isinstance(t["metric"], (int, float)) else "-"
        typer.echo(f"{t['trial_id']:>12s} {t['status']:14s} step {t['step']!s:>6s} metric {metric:>8s} {t['config']}")
    typer.echo(f"best trial {outcome.best_trial}: {outcome.best_metric:.4f}")
    typer.echo(f"artifact: {outcome.artifact_dir}")


def register(app: typer.Typer) -> None:
    app.command("tune", help="Search fine-tuning hyperparameters with Ray Tune (ASHA early stopping, Optuna).")(tune)
