"""Memory of the dedup stage: band rows with the signature (baseline) vs band keys only (current).

Synthetic notes (``clinitune.synth``, seed 11) with planted near duplicates (a few words edited,
``--near-frac`` of the corpus) and exact duplicates (case/whitespace changes, ``--exact-frac``)
are deduplicated by ``mark_duplicates`` on a fresh local Ray (2 CPUs, the job's object-store cap)
in a child process per variant, alternating baseline and current ``--repeats`` times:

* ``baseline``: ``curate/dedup.py`` as of ``--baseline-ref`` (LSH band rows carry the note's
  whole signature, one copy per band);
* ``current``: this checkout's ``curate/dedup.py`` (band rows carry band key and note id only;
  the signature is joined back for notes that share a bucket).

Reported per run: peak PSS of the whole process tree (driver, raylet, GCS, workers; sampled
every 0.2 s) during ``mark_duplicates`` and just before it (the delta is the stage's own
footprint), wall seconds, spilled MiB, and a digest of the duplicates found (note id, reason,
dup_of) — it must be the same for both variants. Also, computed in process on the same notes,
the bytes the near-duplicate shuffle moves with each variant (deterministic, independent of
machine load). Ratios are current / baseline.

    python benchmarks/dedup_memory.py [--n 20000] [--repeats 1] [--baseline-ref REF]

Prints one JSON object; no note text is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
REPO = Path(__file__).resolve().parents[1]
DEDUP_PATH = "platform/clinitune/curate/dedup.py"
DEFAULT_BASELINE_REF = "21dda33"  # main before band rows lost their signature


def make_corpus(n: int, seed: int, near_frac: float, exact_frac: float, path: Path) -> dict:
    """Write ``n`` notes plus planted duplicates as Parquet; return the planted ids (no text)."""
    import pandas as pd

    from clinitune.synth import iter_notes

    rng = random.Random(seed)
    ids, patients, texts = [], [], []
    for rec in iter_notes(n, seed):
        ids.append(rec["note_id"])
        patients.append(rec["patient_id"])
        texts.append(rec["text"])
    planted_near, planted_exact = [], []
    for k, i in enumerate(rng.sample(range(n), int(n * near_frac))):
        words = texts[i].split(" ")
        for _ in range(2):
            j = rng.randrange(len(words))
            if "\n" not in words[j]:
                words[j] = rng.choice(["worsening", "improved", "unchanged", "resolved"])
        ids.append(f"zz-near-{k:06d}")
        patients.append(patients[i])
        texts.append(" ".join(words))
        planted_near.append(ids[-1])
    for k, i in enumerate(rng.sample(range(n), int(n * exact_frac))):
        ids.append(f"zz-exact-{k:06d}")
        patients.append(patients[i])
        texts.append("  " + texts[i].upper())
        planted_exact.append(ids[-1])
    pd.DataFrame({"note_id": ids, "patient_id": patients, "text": texts, "status": "ok", "reason": None}).to_parquet(path)
    return {"near": planted_near, "exact": planted_exact}


def load_dedup(variant: str, ref: str):
    """The dedup module of this checkout, or the one at ``ref`` (from git, as module ``dedup_baseline``)."""
    if variant == "current":
        from clinitune.curate import dedup

        return dedup
    src = subprocess.run(["git", "-C", str(REPO), "show", f"{ref}:{DEDUP_PATH}"], capture_output=True, text=True, check=True).stdout
    where = Path(tempfile.mkdtemp(prefix="dedup-baseline-"))
    (where / "dedup_baseline.py").write_text(src)
    # On the path of this process and (through the environment, before ray.init) of Ray's workers.
    sys.path.insert(0, str(where))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(where), os.environ.get("PYTHONPATH", "")])
    return importlib.import_module("dedup_baseline")


def tree_memory(stop: threading.Event, out: dict) -> None:
    """Peak PSS (and RSS) of this process and all its descendants, sampled every 0.2 s."""
    import psutil

    root = psutil.Process(os.getpid())
    peak_pss = peak_rss = 0
    while not stop.is_set():
        pss = rss = 0
        for p in [root, *root.children(recursive=True)]:
            try:
                info = p.memory_full_info()
                pss += getattr(info, "pss", info.rss)
                rss += info.rss
            except Exception:  # noqa: BLE001 - a process that ended between listing and reading
                pass
        peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
        out["pss"], out["rss"] = peak_pss, peak_rss
        stop.wait(0.2)


def child(args) -> None:
    import pandas as pd
    import ray

    from clinitune.curate.config import CurateConfig
    from clinitune.ray_utils import LOCAL_SYSTEM_CONFIG

    dedup = load_dedup(args.variant, args.baseline_ref)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, _system_config=LOCAL_SYSTEM_CONFIG,
             object_store_memory=CurateConfig().execution.object_store_memory)
    ray.data.DataContext.get_current().enable_progress_bars = False
    df = pd.read_parquet(args.input)
    step = -(-len(df) // 16)  # 16 blocks, as a corpus read from several files would be
    ds = ray.data.from_pandas([df.iloc[i:i + step] for i in range(0, len(df), step)]).materialize()
    del df
    time.sleep(2)
    before: dict = {}
    stop = threading.Event()
    t = threading.Thread(target=tree_memory, args=(stop, before), daemon=True)
    t.start()
    time.sleep(1.0)
    stop.set()
    t.join()
    during: dict = {}
    stop = threading.Event()
    t = threading.Thread(target=tree_memory, args=(stop, during), daemon=True)
    t.start()
    t0 = time.perf_counter()
    out = dedup.mark_duplicates(ds, dedup.DedupConfig()).materialize()
    dups = out.filter(lambda r: r["status"] == "duplicate").select_columns(["note_id", "reason", "dup_of"]).to_pandas()
    secs = time.perf_counter() - t0
    stop.set()
    t.join()
    rows = sorted(zip(dups["note_id"], dups["reason"], dups["dup_of"]))
    digest = hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]
    with open(args.dups_out, "w") as f:
        json.dump(rows, f)  # ids only
    print(json.dumps({
        "variant": args.variant, "seconds": round(secs, 1), "duplicates": len(rows), "digest": digest,
        "pss_before_gib": round(before.get("pss", 0) / 2**30, 3), "peak_pss_gib": round(during.get("pss", 0) / 2**30, 3),
        "peak_rss_gib": round(during.get("rss", 0) / 2**30, 3),
        "stage_pss_gib": round((during.get("pss", 0) - before.get("pss", 0)) / 2**30, 3),
        "spilled_mib": _spilled_mib(),
    }))


def shuffle_bytes(corpus: Path, ref: str) -> dict:
    """Bytes the near-duplicate pass moves through shuffles, per variant, computed in process."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    cur = load_dedup("current", ref)
    base = load_dedup("baseline", ref)
    cfg = cur.DedupConfig()
    bands, rows = cfg.lsh_params()
    df = pd.read_parquet(corpus, columns=["note_id", "text", "status"])
    keys = cur._note_keys(pa.Table.from_pandas(df, preserve_index=False), cfg)
    del df
    # Exact survivors only go on to the near pass (as in mark_duplicates).
    first = keys.group_by("exact_hash").aggregate([("note_id", "min")])
    keys = keys.filter(pc.is_in(keys["note_id"], first["note_id_min"]))
    full_bands = base._band_rows(keys, bands, rows)
    key_bands = cur._band_rows(keys, bands, rows)
    candidates = cur._shared_buckets(key_bands)  # whole table = every bucket in one block
    sigs = cur._signatures(keys)
    joined = candidates.join(sigs, "note_id", join_type="inner")
    current = key_bands.nbytes + candidates.nbytes + sigs.nbytes + joined.nbytes
    return {
        "baseline_band_rows_bytes": full_bands.nbytes,
        "current_band_key_rows_bytes": key_bands.nbytes,
        "current_candidate_rows": candidates.num_rows,
        "current_join_and_verify_bytes": candidates.nbytes + sigs.nbytes + joined.nbytes,
        "current_total_bytes": current,
        "band_shuffle_ratio": round(key_bands.nbytes / full_bands.nbytes, 4),
        "total_ratio": round(current / full_bands.nbytes, 4),
    }


def _spilled_mib() -> float:
    """Spill of this run's Ray, read as the throughput benchmark reads it (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("curate_throughput", Path(__file__).with_name("curate_throughput.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod._spilled_mib()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--near-frac", type=float, default=0.02)
    ap.add_argument("--exact-frac", type=float, default=0.01)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--baseline-ref", default=DEFAULT_BASELINE_REF)
    ap.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    ap.add_argument("--dups-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="clinitune-dedup-mem-") as d:
        tmp = Path(d)
        corpus = tmp / "notes.parquet"
        planted = make_corpus(args.n, args.seed, args.near_frac, args.exact_frac, corpus)
        runs, found = [], {}
        for rep in range(args.repeats):
            for variant in ("baseline", "current"):
                dups_out = tmp / f"{variant}{rep}.json"
                cmd = [sys.executable, __file__, "--_child", "--variant", variant, "--input", str(corpus),
                       "--dups-out", str(dups_out), "--baseline-ref", args.baseline_ref]
                load = os.getloadavg()
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    raise SystemExit(f"{variant} run failed:\n{proc.stderr[-3000:]}")
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                runs.append({**res, "load_avg_1_5_15": [round(x, 1) for x in load]})
                print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
                found[variant] = {tuple(r) for r in json.load(open(dups_out))}
        volume = shuffle_bytes(corpus, args.baseline_ref)
    cur = found["current"]
    near_found = {r[0] for r in cur if r[1] == "near_duplicate"}
    exact_found = {r[0] for r in cur if r[1] == "exact_duplicate"}

    def mean(variant: str, key: str) -> float:
        vals = [r[key] for r in runs if r["variant"] == variant]
        return sum(vals) / len(vals)

    print(json.dumps({
        "benchmark": "dedup_memory",
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
        "notes": args.n,
        "planted": {"near": len(planted["near"]), "exact": len(planted["exact"])},
        "planted_found": {"near": len(near_found & set(planted["near"])), "exact": len(exact_found & set(planted["exact"]))},
        "identical_duplicates": found["baseline"] == found["current"],
        "runs": runs,
        "baseline": {"name": f"dedup.py@{args.baseline_ref} (band rows carry the signature)"},
        "ratio_peak_pss": round(mean("current", "peak_pss_gib") / mean("baseline", "peak_pss_gib"), 3),
        "ratio_stage_pss": round(mean("current", "stage_pss_gib") / max(mean("baseline", "stage_pss_gib"), 1e-9), 3),
        "ratio_seconds": round(mean("current", "seconds") / mean("baseline", "seconds"), 3),
        "shuffle_volume": volume,
    }, indent=2))


if __name__ == "__main__":
    main()
