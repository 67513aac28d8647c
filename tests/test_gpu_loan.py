"""The GPU-loan script plans within its budget and refuses bad arguments before any device time is spent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_loan.sh"


def _run(*args: str, out: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OUT": str(out)} if out else dict(os.environ)
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60)


def test_dry_run_plans_the_items_in_priority_order_within_the_budget(tmp_path):
    r = _run("--dry-run", "--budget-s", "540", out=tmp_path)
    assert r.returncode == 0, r.stderr
    plan = json.loads((tmp_path / "gpu_loan.json").read_text())
    assert list(plan) == ["a", "b", "c", "d", "e", "f"]
    assert sum(v.get("planned_s", 0) for v in plan.values()) <= 540
    assert plan["a"]["planned_s"] > 0 and plan["f"].get("skipped")  # the lowest priority gives way
    assert "--stage lora" in r.stdout and "--stage packing" in r.stdout and "serve_load.py --gpu" in r.stdout
    assert len(list(tmp_path.iterdir())) <= 8  # what a loan brings back


def test_items_can_be_chosen_for_a_second_call(tmp_path):
    r = _run("--dry-run", "--items", "d,e,f", "--budget-s", "300", out=tmp_path)
    assert r.returncode == 0, r.stderr
    assert list(json.loads((tmp_path / "gpu_loan.json").read_text())) == ["d", "e", "f"]


def test_bad_arguments_are_one_line_errors():
    for args, needle in ((["--items", "a,z"], "unknown item 'z'"), (["--budget-s", "ten"], "whole numbers"),
                         (["--frobnicate"], "unknown argument")):
        r = _run(*args)
        assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_the_training_benchmark_refuses_an_unknown_stage_before_looking_for_a_gpu():
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "train_throughput.py"), "--gpu", "--stage", "lora,warp"],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO / "platform")})
    assert r.returncode != 0 and "--stage: unknown ['warp']" in r.stderr
