"""``clinitune synth notes``: synthetic clinical notes with gold PHI spans and ICD-10 labels."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

synth_app = typer.Typer(
    name="synth",
    help="Generate synthetic data: clinical notes with gold PHI spans, ICD-10 labels and planted faults.",
    no_args_is_help=True,
)


@synth_app.command("notes")
def notes(
    n: int = typer.Option(..., "--n", help="How many notes to generate (1 or more)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (new or empty): notes-*.jsonl and _synth_manifest.json."),
    seed: int = typer.Option(0, "--seed", help="Run seed: the same n, seed and options give byte-identical files."),
    dup_rate: float = typer.Option(0.05, "--dup-rate", help="Fraction of notes that are exact copies of an earlier note, in [0, 1)."),
    near_dup_rate: float = typer.Option(0.05, "--near-dup-rate", help="Fraction of notes that are lightly edited copies of an earlier note, in [0, 1)."),
    malformed_rate: float = typer.Option(0.0, "--malformed-rate", help="Fraction of malformed records (bad JSON, bad types, empty text, ...), in [0, 1)."),
    max_chars: int = typer.Option(2500, "--max-chars", help="Budget per note: optional sections are left out of longer notes (800 or more)."),
    code_pool: int = typer.Option(0, "--code-pool", help="Draw chronic, acute and imaging diagnoses from this many ICD-10 codes each (0 = all, a few hundred); a small label space for demos."),
    notes_per_file: int = typer.Option(10_000, "--notes-per-file", help="Notes per JSONL file (fixes the file layout; part of the output's identity)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty output directory (swapped in only when the new one is complete)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster to join (host:port, ray://host:10001) or 'local' for a fresh local Ray (default: $RAY_ADDRESS, else the cluster `ray start --head` started on this machine, else a local Ray)."),
    local: bool = typer.Option(False, "--local", help="Generate in this process without Ray (small runs)."),
) -> None:
    """Generate discharge summaries, progress, nursing and radiology notes on Ray Data."""
    from clinitune.errors import UserError
    from clinitune.synth.generate import SynthOptions
    from clinitune.synth.writer import generate_dataset

    try:
        options = SynthOptions(dup_rate=dup_rate, near_dup_rate=near_dup_rate, malformed_rate=malformed_rate,
                               max_chars=max_chars, code_pool=code_pool).validated()
        result = generate_dataset(n, out, seed, options=options, notes_per_file=notes_per_file, overwrite=overwrite,
                                  use_ray=not local, ray_address=ray_address)
    except UserError as err:  # one line and exit 2, also when the app is invoked directly (CliRunner)
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(UserError.exit_code) from None
    m = result.manifest
    rate = n / result.seconds if result.seconds > 0 else float("inf")
    typer.echo(f"generated {m['records']:,} notes for {m['patients']:,} patients in {result.seconds:.1f}s ({rate:,.0f} notes/s)")
    typer.echo("note types: " + ", ".join(f"{k} {v:,}" for k, v in m["note_types"].items()))
    typer.echo(f"duplicates: exact {m['duplicates']['exact']:,}, near {m['duplicates']['near']:,}; "
               f"malformed: {m['malformed']['total']:,}")
    typer.echo(f"output:   {result.out_dir} ({len(m['files'])} file(s))")
    typer.echo(f"manifest: {result.manifest_path}")


def register(app: typer.Typer) -> None:
    app.add_typer(synth_app, name="synth")
