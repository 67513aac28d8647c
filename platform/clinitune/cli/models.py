"""``clinitune models``: register and list base models (no hub access: local directories and URIs)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from clinitune.errors import UserError

models_app = typer.Typer(name="models", help="Base models: import a Hugging Face directory or URI, list what is registered.",
                         no_args_is_help=True)


def _fail(err: UserError) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(UserError.exit_code)


@models_app.command("list")
def list_cmd(home: Optional[Path] = typer.Option(None, "--home", help="Clinitune home (default $CLINITUNE_HOME or ~/.cache/clinitune).")) -> None:
    """Registered models with architecture, chat-template status and size."""
    from clinitune.models.catalog import list_models

    for e in list_models(home):
        where = e.path or "(converted from GGUF on first use)"
        size = f"{e.size_bytes / 2**20:,.0f} MiB" if e.size_bytes else "-"
        chat = "chat-template" if e.chat_template else "NO chat template"
        typer.echo(f"{e.name:28s} {e.kind:8s} {e.architecture or '-':24s} {chat:16s} {size:>10s}  {where}")


@models_app.command("import")
def import_cmd(
    source: str = typer.Argument(..., help="A local Hugging Face model directory, or a URI (s3://, gs://, hdfs://, file://) of one."),
    name: Optional[str] = typer.Option(None, "--name", "-n", help="Registry name (default: the directory's name)."),
    copy: bool = typer.Option(False, "--copy", help="Copy a local directory into the cache instead of referencing it in place."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing entry of that name."),
    home: Optional[Path] = typer.Option(None, "--home", help="Clinitune home (default $CLINITUNE_HOME or ~/.cache/clinitune)."),
) -> None:
    """Register a base model so configs can name it."""
    from clinitune.models.catalog import import_model

    try:
        e = import_model(source, name, copy=copy, overwrite=overwrite, home=home)
    except UserError as err:
        _fail(err)
    warn = "" if e.chat_template else "  (warning: no chat template; add chat_template.jinja before training on chat data)"
    typer.echo(f"registered {e.name}: {e.architecture} at {e.path}{warn}")


@models_app.command("default")
def default_cmd(home: Optional[Path] = typer.Option(None, "--home", help="Clinitune home.")) -> None:
    """Convert the embedded SmolLM2-135M-Instruct (GGUF) to safetensors once and print its directory."""
    from clinitune.models.gguf import ensure_embedded_default

    try:
        typer.echo(str(ensure_embedded_default(home)))
    except UserError as err:
        _fail(err)


@models_app.command("tiny")
def tiny_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the model to."),
    name: Optional[str] = typer.Option(None, "--name", "-n", help="Also register it under this name."),
    hidden_size: int = typer.Option(64, "--hidden-size", help="Hidden size."),
    layers: int = typer.Option(2, "--layers", help="Decoder layers."),
    seed: int = typer.Option(0, "--seed", help="Initialisation seed."),
) -> None:
    """Write a random-init tiny Llama with a ChatML tokenizer (smoke tests of the pipeline)."""
    from clinitune.models.tiny import create_tiny_model

    p = create_tiny_model(out, hidden_size=hidden_size, num_layers=layers, seed=seed, register_as=name)
    typer.echo(f"tiny model written to {p}" + (f" and registered as {name}" if name else ""))


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
