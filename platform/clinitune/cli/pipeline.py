"""``clinitune pipeline run|status|abandon``: the continuous fine-tuning loop."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from clinitune.config import load_config

pipeline_app = typer.Typer(help="Continuous loop: new notes -> curate -> train -> evaluate -> gate -> register -> promote.",
                           no_args_is_help=True)
_CONFIG = typer.Option(..., "--config", "-c", help="Pipeline config YAML (see jobs/configs/pipeline.yaml).")


@pipeline_app.command("run")
def run_cmd(config: Path = _CONFIG) -> None:
    """One tick: process what is new in the inbox (or resume an unfinished run); a no-op when nothing is new."""
    from rich.console import Console

    from clinitune.pipeline.config import PipelineConfig
    from clinitune.pipeline.runner import run_pipeline

    cfg = load_config(config, PipelineConfig)
    console = Console(stderr=True)
    with console.status("[bold]pipeline…") as status:
        result = run_pipeline(cfg, report=lambda m: status.update(f"[bold]{m}…"))
    if result.status == "noop":
        typer.echo("nothing new: no run started")
        return
    typer.echo(f"run {result.run_id}: {result.status}" + (f" (version {result.version})" if result.version else ""))
    for reason in result.reasons:
        typer.echo(f"  - {reason}")
    if result.report_path:
        typer.echo(f"report: {result.report_path}")


@pipeline_app.command("status")
def status_cmd(config: Path = _CONFIG) -> None:
    """Runs, their stages, and the unfinished run (if any)."""
    from clinitune.pipeline.config import PipelineConfig
    from clinitune.pipeline.runner import pipeline_status

    typer.echo(json.dumps(pipeline_status(load_config(config, PipelineConfig)), indent=2))


@pipeline_app.command("abandon")
def abandon_cmd(config: Path = _CONFIG) -> None:
    """Give up the unfinished run (its inputs count as processed); production is not touched."""
    from clinitune.pipeline.config import PipelineConfig
    from clinitune.pipeline.runner import abandon_current

    run_id = abandon_current(load_config(config, PipelineConfig))
    typer.echo(f"abandoned run {run_id}" if run_id else "no unfinished run")


def register(app: typer.Typer) -> None:
    app.add_typer(pipeline_app, name="pipeline")
