"""``clinitune evaluate`` (old spelling: ``eval``): candidate vs baseline on held-out patients -> report.json + report.html (+ gate)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from clinitune.config import load_config


def print_report(report: dict, json_path: Path, html_path: Path) -> None:
    from rich.console import Console

    from clinitune.evaluate.knowledge import knowledge_lines
    from clinitune.evaluate.report import arms_table, judged_lines, summary_table

    console = Console()
    console.print(summary_table(report, f"{report['candidate']['name']} vs {report['baseline']['name']} "
                                        f"({report['data']['examples']} held-out examples)"))
    arms = arms_table(report)
    if arms is not None:
        console.print(arms)
    for line in judged_lines(report) + knowledge_lines(report.get("knowledge")):
        console.print(line, markup=False, highlight=False)
    gate = report.get("gate")
    if gate:
        console.print(f"gate: [bold]{gate['decision'].upper()}[/bold]")
        for reason in gate["reasons"]:
            console.print(f"  - {reason}", markup=False, highlight=False)
    console.print(f"report: {json_path}", markup=False, highlight=False)
    console.print(f"html:   {html_path}", markup=False, highlight=False)


def eval_command(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Eval config YAML (see jobs/configs/evaluate.yaml)."),
    candidate: Optional[str] = typer.Option(None, "--candidate", help="Override candidate (artifact dir, registry:<alias|version>, model name or dir)."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="Override baseline ('base', 'production' or a model reference)."),
    data: Optional[str] = typer.Option(None, "--data", help="Override data (curated dataset directory)."),
    output_dir: Optional[str] = typer.Option(None, "--output-dir", "-o", help="Override output_dir (report.json, report.html)."),
    policy: Optional[Path] = typer.Option(None, "--policy", help="Gate policy YAML; the decision goes into the report."),
    report: Optional[Path] = typer.Option(None, "--report", help="Only re-decide this existing report.json under --policy (no models run)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Override execution.ray_address: a cluster address, or 'local' for a fresh local Ray."),
    full_benchmarks: bool = typer.Option(False, "--full-benchmarks", help="Score every question of the knowledge benchmarks (benchmarks.enabled, sample: null); slow on a CPU."),
) -> None:
    """Evaluate a fine-tuned model against its base (or production): task metrics, forgetting probes,
    PHI canaries, hallucination, fairness slices, consistency; optionally gate it."""
    from clinitune.errors import UserError
    from clinitune.evaluate.config import EvalConfig

    if report is not None:
        from clinitune.evaluate.report import REPORT_HTML, read_report
        from clinitune.evaluate.runner import gate_report

        if policy is None:
            raise UserError("--report needs --policy. Fix: pass --policy jobs/configs/gate.yaml.")
        gate_report(report, policy)
        rp = report if report.is_file() else report / "report.json"
        print_report(read_report(rp), rp, rp.parent / REPORT_HTML)
        return
    if config is None and not (candidate and data):
        raise UserError("missing --config. Fix: pass --config jobs/configs/evaluate.yaml (or --candidate and --data).")
    overrides = {"candidate": candidate, "baseline": baseline, "data": data, "output_dir": output_dir,
                 "gate_policy": str(policy) if policy else None}
    cfg = load_config(config, EvalConfig, overrides)
    if ray_address:
        cfg.execution.ray_address = ray_address
    if full_benchmarks:
        cfg.benchmarks.enabled, cfg.benchmarks.sample = True, None

    from rich.console import Console

    from clinitune.evaluate.runner import run_evaluation

    console = Console(stderr=True)
    with console.status("[bold]evaluating…") as status:
        result = run_evaluation(cfg, report=lambda m: status.update(f"[bold]{m}…"))
    print_report(result.report, result.report_path, result.html_path)


def register(app: typer.Typer) -> None:
    app.command("evaluate", help="Evaluate a candidate vs its baseline on held-out patients; write report.json/html; optionally gate it.")(eval_command)
    app.command("eval", hidden=True, help="Old spelling of `clinitune evaluate`.")(eval_command)
