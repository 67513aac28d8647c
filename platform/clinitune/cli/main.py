"""The ``clinitune`` command line: one subcommand per stage.

Each stage lives in its own module under ``clinitune.cli`` exposing ``register(app)``. User
mistakes raise :class:`clinitune.errors.UserError`; ``main`` prints its one-line message and
exits with code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click
import typer
from typer.core import TyperGroup

from clinitune.errors import UserError

# Stage modules, in the order their commands appear in --help.
STAGE_MODULES = (
    "synth", "curate", "phi", "models", "data", "train", "tune", "evaluate", "registry",
    "pipeline", "review", "rag", "serve",
)

class _Group(TyperGroup):
    """Root command group: a UserError from any command becomes one line on stderr and exit 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(UserError.exit_code) from None


app = typer.Typer(
    cls=_Group,
    name="clinitune",
    help="Clinitune: curate and de-identify clinical notes, fine-tune, evaluate, gate and serve a domain LLM on Ray.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details (never note text)."),
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _register_stages() -> None:
    for name in STAGE_MODULES:
        modname = f"clinitune.cli.{name}"
        try:
            module = importlib.import_module(modname)
        except ModuleNotFoundError as err:
            if err.name == modname:  # stage not built yet
                continue
            raise
        module.register(app)


_register_stages()


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # Ray forks workers after tokenizers ran
    try:
        app(args=argv, prog_name="clinitune", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return code
    except UserError as err:
        typer.echo(f"error: {err}", err=True)
        return UserError.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    return 0


def run() -> None:  # pragma: no cover - console entry
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
