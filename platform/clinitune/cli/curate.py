"""``clinitune curate``: raw notes in, curated Parquet and a manifest out."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from clinitune.config import load_config


def curate(
    input: Optional[list[Path]] = typer.Option(None, "--input", "-i", help="Input file or directory (repeatable). Formats by extension: .jsonl .ndjson (FHIR bulk) .json (FHIR Bundle) .csv .parquet .txt"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output directory: {train,validation,test}/, quarantine/, dropped/, manifest.json, DATASET_CARD.md."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Curation config YAML (see jobs/configs/curate.yaml)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster to join (host:port, ray://host:10001) or 'local' for a fresh local Ray (default: $RAY_ADDRESS, else the cluster `ray start --head` started on this machine, else a local Ray)."),
    force: bool = typer.Option(False, "--force", help="Re-run even when inputs and config are unchanged since the published output."),
    list_steps: bool = typer.Option(False, "--list-steps", help="List the registered curation steps and exit."),
) -> None:
    """Validate, clean, de-identify, deduplicate and patient-split clinical notes on Ray Data."""
    from clinitune.curate.config import CurateConfig
    from clinitune.curate.steps.base import registered_steps
    from clinitune.errors import UserError

    console = Console(stderr=True)
    if list_steps:
        for name, cls in sorted(registered_steps().items()):
            doc = (cls.__doc__ or "").strip().splitlines()
            typer.echo(f"{name:20s} {doc[0] if doc else ''}")
        return
    if not input:
        raise UserError("missing --input. Fix: pass at least one --input file or directory.")
    if output is None:
        raise UserError("missing --output. Fix: pass --output DIR.")
    cfg = load_config(config, CurateConfig)
    if ray_address:
        cfg.execution.ray_address = ray_address

    from clinitune.curate.pipeline import run_curation

    with console.status("[bold]curating…") as status:
        result = run_curation([str(p) for p in input], output, cfg, force=force, report=lambda m: status.update(f"[bold]{m}…"))
    print_summary(result, console)


def print_summary(result, console: Console) -> None:
    from rich.table import Table

    c = result.manifest["counts"]
    table = Table(title="curation" + (" (unchanged: kept published output)" if result.reused else ""))
    table.add_column("records")
    table.add_column("count", justify="right")
    table.add_row("input", f"{c['input']:,}")
    for split, n in c["output"].items():
        table.add_row(f"output/{split}", f"{n:,}")
    for reason, n in sorted(c["quarantined"].items()):
        table.add_row(f"quarantined/{reason}", f"{n:,}")
    for reason, n in sorted(c["filtered"].items()):
        table.add_row(f"filtered/{reason}", f"{n:,}")
    for kind, n in c["duplicates"].items():
        table.add_row(f"duplicate/{kind}", f"{n:,}")
    console.print(table)
    typer.echo(f"output:   {result.output}")
    typer.echo(f"manifest: {result.manifest_path}")


def register(app: typer.Typer) -> None:
    app.command("curate")(curate)
