"""``make demo``: the whole story offline on a laptop CPU, in at most 20 minutes.

synthetic notes -> curation with de-identification -> ICD-10 coding training set -> LoRA
fine-tuning of the embedded SmolLM2-135M -> evaluation vs the base model on held-out patients ->
gate -> MLflow registry. Prints the report path and a short table.

    python jobs/demo.py --workdir work/demo [--config jobs/configs/demo.yaml]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=None, help="Working directory (overrides the config's workdir).")
    parser.add_argument("--config", default=str(ROOT / "jobs" / "configs" / "demo.yaml"), help="Demo config YAML.")
    args = parser.parse_args(argv)
    for key, value in (("RAY_USAGE_STATS_ENABLED", "0"), ("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"),
                       ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(key, value)

    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from rich.console import Console

    from clinitune.artifacts.curated import MANIFEST
    from clinitune.config import load_config
    from clinitune.pipeline.demo import DemoConfig, run_demo
    from clinitune.errors import UserError
    from clinitune.evaluate.report import summary_table

    console = Console()
    try:
        cfg = load_config(args.config, DemoConfig, {"workdir": args.workdir})
        result = run_demo(cfg, root=ROOT, report=lambda m: console.print(m, markup=False, highlight=False))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return UserError.exit_code
    if result.curated is not None:
        console.print(f"curated notes: {result.curated}  (manifest: {result.curated / MANIFEST})", markup=False, highlight=False)
    if result.report is None:
        console.print("no report was produced")
        return 1
    rep = result.report
    console.print(summary_table(rep, f"{rep['candidate']['name']} vs {rep['baseline']['name']} on {rep['data']['examples']} "
                                     f"held-out notes ({rep['data']['patients']} patients never trained on)",
                                ("fine-tuned", "base")))
    pm = rep["task"]["primary_metric"]
    cand, base = rep["metrics"]["candidate"], rep["metrics"]["baseline"]
    if cand.get(f"rag.{pm}") is not None:
        console.print(f"{pm} on the same held-out notes: base {base.get(pm, 0):.3f} | fine-tuned {cand.get(pm, 0):.3f} | "
                      f"fine-tuned + RAG ({rep['rag']['kb']}, top {rep['rag']['top_k']}) {cand[f'rag.{pm}']:.3f}", markup=False, highlight=False)
    gate = rep.get("gate") or {}
    console.print(f"gate: {str(gate.get('decision', 'n/a')).upper()}" + (f"  registry version: {result.version}" if result.version else ""))
    for reason in gate.get("reasons", [])[:8]:
        console.print(f"  - {reason}", markup=False, highlight=False)
    if result.pipeline_status == "noop":
        console.print("(nothing new in the inbox: showing the last run's report)")
    console.print(f"report: {result.report_path}", markup=False, highlight=False)
    console.print(f"html:   {result.html_path}", markup=False, highlight=False)
    console.print(f"took {result.seconds:.0f}s", markup=False, highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
