"""Curation throughput: notes/s per CPU core for the whole pipeline, at 1 and 2 workers.

Generates synthetic notes (not timed), then runs `run_curation` on a fresh local Ray sized to 1
and to 2 CPUs, each in its own process so Ray starts clean, sampling the peak memory (RSS) of
the whole process tree. The named baseline, measured in the same run on the same notes, is
`inprocess_steps`: the same row-local steps (normalize, quality, de-identify, split) applied
in one Python process without Ray, reading and writing nothing — the cost floor of the work
itself. The ratio shows what Ray's distribution costs or gains per core.

    python benchmarks/curate_throughput.py [--n 4000 ...] [--workers 1 2]

With several ``--n`` sizes (e.g. ``--n 100000 300000 --workers 2``) it also reports how time and
peak memory grow with the corpus: seconds per 1,000 notes at each size relative to the smallest
(linear growth = 1.0) and the peak RSS of each. Spilled bytes come from Ray's memory summary. Each
run states its de-identification mode (the PHI engine's detector). The local Ray gets the job's
default object store (``execution.object_store_memory``).

Prints one JSON object. Targets: >= 100 notes/s per core for all stages together (rules-only
de-identification), peak memory flat with corpus size (<= 4 GiB), time linear within 15 %.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def write_notes(n: int, seed: int, path: Path) -> None:
    from clinitune.synth import iter_notes

    with open(path, "w", encoding="utf-8") as f:
        for rec in iter_notes(n, seed):
            rec.pop("phi", None)
            f.write(json.dumps(rec) + "\n")


def peak_rss_of_tree(proc: subprocess.Popen, stop: threading.Event, out: dict) -> None:
    """Peak memory of the whole process tree (driver, raylet, GCS, workers), sampled every 0.5 s.

    Two sums: RSS counts the object store's shared pages once per process that maps them (an
    over-count), PSS (proportional set size) shares them out, so the PSS sum is the tree's real
    footprint. Both are reported."""
    import psutil

    peak = peak_pss = 0
    cpu: dict[int, float] = {}  # last CPU seconds seen per process of the tree
    root = psutil.Process(proc.pid)
    while not stop.is_set():
        try:
            procs = [root, *root.children(recursive=True)]
            total = pss = 0
            for p in procs:
                try:
                    info = p.memory_full_info()
                    total += info.rss
                    pss += getattr(info, "pss", info.rss)
                    t = p.cpu_times()
                    cpu[p.pid] = t.user + t.system
                except psutil.Error:
                    pass
            # Ray's raylet/GCS/workers are children of the driver process here.
            peak, peak_pss = max(peak, total), max(peak_pss, pss)
        except psutil.Error:
            pass
        stop.wait(0.5)
    out["peak_rss_bytes"] = peak
    out["peak_pss_bytes"] = peak_pss
    out["cpu_seconds"] = sum(cpu.values())


def child(args) -> None:
    import ray

    from clinitune.curate.config import CurateConfig
    from clinitune.curate.pipeline import run_curation

    from clinitune.ray_utils import LOCAL_SYSTEM_CONFIG

    cfg = CurateConfig()
    cfg.deid.detector = args.detector
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, _system_config=LOCAL_SYSTEM_CONFIG,
             object_store_memory=cfg.execution.object_store_memory)
    ray.data.DataContext.get_current().enable_progress_bars = False
    t0 = time.perf_counter()
    result = run_curation([args.input], args.output, cfg, force=True)
    secs = time.perf_counter() - t0
    print(json.dumps({"seconds": secs, "counts": result.manifest["counts"], "spilled_mib": _spilled_mib(),
                      "deid_mode": _deid_mode(cfg)}))


def _spilled_mib() -> float:
    """MiB spilled to disk over the run, from Ray's memory summary ("Spilled N MiB, ...")."""
    import re

    try:
        from ray._private.internal_api import memory_summary

        import ray

        # Several Ray instances may run on a shared machine: ask this run's own GCS.
        address = ray.get_runtime_context().gcs_address
        m = re.search(r"Spilled (\d+(?:\.\d+)?) MiB", memory_summary(address=address, stats_only=True))
        return float(m.group(1)) if m else 0.0
    except Exception:  # noqa: BLE001 - a private API: report unknown rather than fail the run
        return -1.0


def _deid_mode(cfg) -> str:
    """What detects PHI in this run: the stage's detector (null = the engine's default, the ensemble)."""
    if not cfg.deid.enabled:
        return "off"
    return str(cfg.deid.detector or cfg.deid.options.get("detector") or "ensemble")


def run_workers(workers: int, notes: Path, tmp: Path, detector: str | None = None) -> dict:
    out_dir = tmp / f"out{workers}"
    cmd = [sys.executable, __file__, "--_child", "--cpus", str(workers), "--input", str(notes), "--output", str(out_dir),
           *(["--detector", detector] if detector else [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop, mem = threading.Event(), {}
    t = threading.Thread(target=peak_rss_of_tree, args=(proc, stop, mem), daemon=True)
    t.start()
    out, err = proc.communicate()
    stop.set()
    t.join()
    if proc.returncode != 0:
        raise SystemExit(f"curation run with {workers} worker(s) failed:\n{err[-3000:]}")
    res = json.loads(out.strip().splitlines()[-1])
    n = res["counts"]["input"]
    import shutil

    shutil.rmtree(out_dir, ignore_errors=True)
    return {
        "notes": n,
        "deid_mode": res.get("deid_mode"),
        "spilled_mib": res.get("spilled_mib"),
        "workers": workers,
        "seconds": round(res["seconds"], 2),
        "notes_per_s": round(n / res["seconds"], 1),
        "notes_per_s_per_core": round(n / res["seconds"] / workers, 1),
        "peak_rss_gib": round(mem.get("peak_rss_bytes", 0) / 2**30, 2),
        "peak_pss_gib": round(mem.get("peak_pss_bytes", 0) / 2**30, 2),
        # CPU seconds of the whole process tree (sampled every 0.2 s): independent of neighbours
        # sharing the machine, unlike wall-clock rates.
        "cpu_seconds": round(mem.get("cpu_seconds", 0.0), 1),
        "notes_per_cpu_s": round(n / max(mem.get("cpu_seconds", 0.0), 1e-9), 1),
    }


def inprocess_baseline(notes: Path, limit: int, detector: str | None = None) -> dict:
    import pandas as pd

    from clinitune.curate.config import CurateConfig
    from clinitune.curate.steps.base import build_step

    cfg = CurateConfig()
    rows = [json.loads(line) for _, line in zip(range(limit), open(notes, encoding="utf-8"))]
    df = pd.DataFrame({
        "note_id": [r["note_id"] for r in rows], "patient_id": [r["patient_id"] for r in rows],
        "text": [r["text"] for r in rows], "status": "ok", "reason": None,
    })
    specs = [(s.name, s.options) for s in [*cfg.pre_steps, *cfg.steps]]
    specs += [("deidentify", {"mode": cfg.deid.mode, **({"detector": detector} if detector else {})}),
              ("patient_split", cfg.split.model_dump())]
    steps = [build_step(name, opts) for name, opts in specs]
    steps[-2](df.head(2).copy())  # build the PHI engine outside the timed region
    t0, c0 = time.perf_counter(), time.process_time()
    for start in range(0, len(df), 256):
        batch = df.iloc[start:start + 256].copy()
        for step in steps:
            batch = step(batch)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"notes": len(df), "seconds": round(secs, 2), "notes_per_s_per_core": round(len(df) / secs, 1),
            "notes_per_cpu_s": round(len(df) / cpu, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[4000], help="Synthetic notes to curate (several sizes: a growth curve).")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--detector", choices=["ensemble", "rules"], default=None,
                    help="PHI detector of the de-identification stage (default: the engine's, the ensemble); the throughput target is for 'rules'.")
    ap.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cpus", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    ap.add_argument("--output", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        child(args)
        return
    runs, base = [], None
    with tempfile.TemporaryDirectory(prefix="clinitune-bench-") as d:
        tmp = Path(d)
        for n in args.n:
            notes = tmp / f"notes{n}.jsonl"
            write_notes(n, args.seed, notes)
            for w in args.workers:
                load = os.getloadavg()
                runs.append({**run_workers(w, notes, tmp, args.detector), "load_avg_1_5_15": [round(x, 1) for x in load]})
                print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
            if base is None:
                base = inprocess_baseline(notes, min(n, 2000), args.detector)
            notes.unlink()
    best = max(r["notes_per_s_per_core"] for r in runs)
    growth = {}
    if len(args.n) > 1:
        for w in args.workers:
            mine = sorted((r for r in runs if r["workers"] == w), key=lambda r: r["notes"])
            first = mine[0]["seconds"] / mine[0]["notes"]
            growth[str(w)] = [{"notes": r["notes"], "seconds_per_1k_vs_smallest": round(r["seconds"] / r["notes"] / first, 2),
                               "peak_rss_gib": r["peak_rss_gib"], "peak_pss_gib": r["peak_pss_gib"]} for r in mine]
    print(json.dumps({
        "benchmark": "curate_throughput",
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
        "notes": args.n,
        "runs": runs,
        "growth": growth,
        "baseline": {"name": "inprocess_steps", **base},
        "ratio_vs_baseline_per_core": {f"{r['notes']}@{r['workers']}": round(r["notes_per_s_per_core"] / base["notes_per_s_per_core"], 2) for r in runs},
        "ratio_vs_baseline_per_cpu_s": {f"{r['notes']}@{r['workers']}": round(r["notes_per_cpu_s"] / base["notes_per_cpu_s"], 2) for r in runs},
        "target_notes_per_s_per_core": 100,
        "meets_target": best >= 100,
    }, indent=2))


if __name__ == "__main__":
    main()
