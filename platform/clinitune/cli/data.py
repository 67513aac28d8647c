"""``clinitune data``: build tokenised training data from curated Parquet or chat JSONL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from clinitune.errors import UserError

data_app = typer.Typer(name="data", help="Training data: task examples, chat template, label masking, packing (cached).",
                       no_args_is_help=True)


@data_app.command("build")
def build_cmd(
    config: Path = typer.Option(..., "--config", "-c", help="Data config YAML (see jobs/configs/data.yaml)."),
    model: Optional[str] = typer.Option(None, "--model", help="Override data.model (registered name or directory)."),
    force: bool = typer.Option(False, "--force", help="Rebuild even when the cache holds this dataset."),
) -> None:
    """Build (or find in the cache) the tokenised dataset and print its directory and counts."""
    from clinitune.config import load_config
    from clinitune.data.build import build_dataset, load_manifest
    from clinitune.data.config import DataConfig

    try:
        cfg = load_config(config, DataConfig, {"model": model})
        out = build_dataset(cfg, force=force)
    except UserError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(UserError.exit_code) from None
    m = load_manifest(out)
    for split, s in m["splits"].items():
        dropped = ", ".join(f"{k} {v}" for k, v in s["dropped"].items()) or "none"
        typer.echo(f"{split:10s} {s['input_rows']:>8,} rows -> {s['examples']:>8,} examples in {s['sequences']:>8,} sequences, "
                   f"{s['tokens']:>10,} tokens ({s['target_tokens']:,} trained); dropped: {dropped}")
    typer.echo(f"dataset {m['dataset_hash'][:16]}: {out}")


@data_app.command("tasks")
def tasks_cmd() -> None:
    """List the registered task builders and the columns they read."""
    from clinitune.data.builders import registered_builders

    for name, cls in sorted(registered_builders().items()):
        cols = " or ".join("(" + ", ".join(cs) + ")" for cs in cls.column_sets)
        typer.echo(f"{name:14s} {cls.description}; reads {cols}")


@data_app.command("show")
def show_cmd(dataset: Path = typer.Argument(..., help="A built dataset directory.")) -> None:
    """Print a built dataset's manifest (counts and lineage; never text)."""
    from clinitune.data.build import load_manifest

    try:
        typer.echo(json.dumps(load_manifest(dataset), indent=2))
    except UserError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(UserError.exit_code) from None


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
