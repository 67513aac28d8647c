"""``clinitune registry list|show|promote|rollback``: the MLflow model registry."""

from __future__ import annotations

import json
from typing import Optional

import typer

from clinitune.registry.settings import DEFAULT_MODEL_NAME

registry_app = typer.Typer(help="Model registry (MLflow): versions with lineage, candidate/production aliases, promote, rollback.",
                           no_args_is_help=True)

_URI = typer.Option(None, "--tracking-uri", "--registry-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///<workdir>/mlflow.db).")
_WORKDIR = typer.Option("work", "--workdir", help="Working directory holding the default registry database.")
_NAME = typer.Option(DEFAULT_MODEL_NAME, "--model-name", help="Registered model name.")
_RELOAD = typer.Option(None, "--reload-url", help="Serving reload URL to POST to after production changes.")


def _registry(uri, workdir, name, reload_url=None):
    from clinitune.registry import Registry

    return Registry(uri, model_name=name, workdir=workdir, reload_url=reload_url)


def _when(ms: int) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ms / 1000)) if ms else ""


@registry_app.command("list")
def list_cmd(tracking_uri: Optional[str] = _URI, workdir: str = _WORKDIR, model_name: str = _NAME) -> None:
    """List versions with aliases, gate decision and primary metric."""
    from rich.console import Console
    from rich.table import Table

    reg = _registry(tracking_uri, workdir, model_name)
    versions = reg.list_versions()
    if not versions:
        typer.echo(f"model '{model_name}' has no versions in {reg.uri}")
        return
    table = Table(title=f"{model_name} ({reg.uri})")
    for col in ("version", "aliases", "created", "gate", "metric", "dataset"):
        table.add_column(col)
    for v in versions:
        metric = next((f"{k.removeprefix('clinitune.eval.')}={val}" for k, val in v.tags.items() if k.startswith("clinitune.eval.")), "")
        table.add_row(v.version, ", ".join(sorted(v.aliases)), _when(v.created_at), v.tags.get("clinitune.gate_decision", ""),
                      metric, v.tags.get("clinitune.dataset_hash", "")[:12])
    Console().print(table)
    hist = reg.history()
    if hist:
        typer.echo(f"production history: {' -> '.join(hist)}")


@registry_app.command("show")
def show_cmd(ref: str = typer.Argument(..., help="Version number or alias (production, candidate)."),
             tracking_uri: Optional[str] = _URI, workdir: str = _WORKDIR, model_name: str = _NAME) -> None:
    """Show one version: aliases, local artifact path, lineage tags."""
    info = _registry(tracking_uri, workdir, model_name).resolve(ref, field_name="ref")
    typer.echo(json.dumps(info.to_json(), indent=2))


@registry_app.command("promote")
def promote_cmd(version: str = typer.Argument(..., help="Version number (or alias, e.g. candidate) to make production."),
                tracking_uri: Optional[str] = _URI, workdir: str = _WORKDIR, model_name: str = _NAME,
                reload_url: Optional[str] = _RELOAD) -> None:
    """Make a version production and tell serving to reload."""
    reg = _registry(tracking_uri, workdir, model_name, reload_url)
    info = reg.promote(reg.resolve(version, field_name="version").version)
    typer.echo(f"production -> version {info.version} ({info.local_path})")


@registry_app.command("rollback")
def rollback_cmd(tracking_uri: Optional[str] = _URI, workdir: str = _WORKDIR, model_name: str = _NAME,
                 reload_url: Optional[str] = _RELOAD) -> None:
    """Restore the previous production version (one command) and tell serving to reload."""
    info = _registry(tracking_uri, workdir, model_name, reload_url).rollback()
    typer.echo(f"production rolled back -> version {info.version} ({info.local_path})")


def register(app: typer.Typer) -> None:
    app.add_typer(registry_app, name="registry")
