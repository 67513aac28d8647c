"""``clinitune pipeline run|status|abandon|demo``: the continuous fine-tuning loop (and the demo, one tick of it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

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


@pipeline_app.command("demo")
def demo_cmd(
    config: Path = typer.Option(..., "--config", "-c", help="Demo config YAML (see jobs/configs/demo.yaml)."),
    workdir: Optional[Path] = typer.Option(None, "--workdir", "-w", help="Override workdir (inbox, pipeline state, runs, registry, reports)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Override ray_address: a cluster address, or 'local' for a fresh local Ray."),
) -> None:
    """The whole story offline (``make demo``): synthetic notes -> curation with de-identification ->
    LoRA fine-tuning -> evaluation vs the base on held-out patients -> gate -> registry. Running it
    again finds nothing new and shows the last report."""
    from rich.console import Console

    from clinitune.artifacts.curated import MANIFEST
    from clinitune.evaluate.knowledge import knowledge_lines
    from clinitune.evaluate.report import arms_table, judged_lines, summary_table
    from clinitune.pipeline.demo import DemoConfig, run_demo

    cfg = load_config(config, DemoConfig, {"workdir": str(workdir) if workdir else None, "ray_address": ray_address})
    console = Console()

    def say(line: str) -> None:
        console.print(line, markup=False, highlight=False)

    result = run_demo(cfg, root=_checkout_of(config), report=say)
    if result.curated is not None:
        say(f"curated notes: {result.curated}  (manifest: {result.curated / MANIFEST})")
    if result.report is None:
        say("no report was produced")
        raise typer.Exit(1)
    rep = result.report
    console.print(summary_table(rep, f"{rep['candidate']['name']} vs {rep['baseline']['name']} on {rep['data']['examples']} "
                                     f"held-out notes ({rep['data']['patients']} patients never trained on)",
                                ("fine-tuned", "base")))
    arms = arms_table(rep, "base, base + RAG, fine-tuned, fine-tuned + RAG on the same held-out notes")
    if arms is not None:
        console.print(arms)
    nk = rep.get("new_knowledge") or {}
    if nk.get("enabled"):
        say(f"new knowledge: {nk.get('examples')} held-out notes need {', '.join(nk.get('codes') or [])} "
            "(never a training label; their reference text was ingested after training)")
    for line in judged_lines(rep) + knowledge_lines(rep.get("knowledge")):
        say(line)
    gate = rep.get("gate") or {}
    say(f"gate: {str(gate.get('decision', 'n/a')).upper()}" + (f"  registry version: {result.version}" if result.version else ""))
    for reason in gate.get("reasons", []):
        say(f"  - {reason}")
    if result.pipeline_status == "noop":
        say("(nothing new in the inbox: showing the last run's report)")
    say(f"report: {result.report_path}")
    say(f"html:   {result.html_path}")
    say(f"took {result.seconds:.0f}s")


def _checkout_of(config: Path) -> Path:
    """Where the demo config's relative paths (jobs/configs/train.yaml, ...) are: the checkout the
    config is in (``<checkout>/jobs/...``), else the working directory, else the checkout this
    package runs from."""
    import clinitune

    resolved = config.expanduser().resolve()
    candidates = [p for p in resolved.parents if resolved.is_relative_to(p / "jobs")]
    candidates += [Path.cwd(), Path(clinitune.__file__).resolve().parents[2]]
    return next((c for c in candidates if (c / "jobs" / "configs").is_dir()), Path.cwd())


def register(app: typer.Typer) -> None:
    app.add_typer(pipeline_app, name="pipeline")
