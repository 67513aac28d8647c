"""Boilerplate removal on real notes with injected known blocks: what goes, what must stay.

Real clinician-written notes (ACI-Bench notes; MTS-Dialog note sections, each under its section
header written in one of four styles) get template blocks from ``boilerplate_inject`` (family A or
B). The detector (``find_boilerplate`` on a local Ray, then ``strip_boilerplate``) runs with
the job's default ``BoilerplateConfig``. Scores, per non-blank line:

* injected lines removed (target >= 95 %),
* original lines removed (target <= 0.5 %).

Protocol: the settings and the clinical vocabulary's rules were tuned on ACI-Bench plus the
MTS-Dialog validation split with families A and B (``tune``). Family C on the MTS-Dialog training
split was the first held-out figure; its misses were then looked at to generalise the detector,
so it is now reported as ``tuned_on_c`` (biased). Families D and E (``boilerplate_heldout``)
were the next held-out pair; their misses were then looked at too (``tuned_on_de``). The held-out
family is now F (``boilerplate_heldout_f``: written and committed before the D/E-driven changes,
its own seed and pools) on both corpora (``held_out``). The training split with A and B is
reported too (``other``). Named baseline in the same run: ``line_frequency``, the detector this replaced (every
line of >= 10 characters in >= max(20, 5 % of notes) notes removed, no clinical guard, no blocks).

    python benchmarks/boilerplate_removal.py [--data ../shared/data]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from boilerplate_heldout import inject_heldout  # noqa: E402
from boilerplate_heldout_f import inject_family_f  # noqa: E402
from boilerplate_inject import inject  # noqa: E402

MTS_HEADERS = {
    "GENHX": "History of Present Illness", "PASTMEDICALHX": "Past Medical History", "FAM/SOCHX": "Family and Social History",
    "CC": "Chief Complaint", "PASTSURGICAL": "Past Surgical History", "ALLERGY": "Allergies", "ROS": "Review of Systems",
    "MEDICATIONS": "Medications", "ASSESSMENT": "Assessment", "EXAM": "Physical Exam", "DIAGNOSIS": "Diagnosis",
    "DISPOSITION": "Disposition", "PLAN": "Plan", "EDCOURSE": "ED Course", "IMMUNIZATIONS": "Immunizations",
    "IMAGING": "Imaging", "GYNHX": "Gyn History", "PROCEDURES": "Procedures", "OTHER_HISTORY": "Other History", "LABS": "Labs",
}
STYLES = [lambda h: h.upper(), lambda h: f"{h}:", lambda h: f"# {h}", lambda h: f"{h.upper()}:"]


def load_aci(root: Path) -> list[tuple[str, str, str]]:
    frames = [pd.read_csv(root / "aci-bench" / f) for f in ("train.csv", "valid.csv")]
    df = pd.concat(frames, ignore_index=True)
    return [(f"aci-{r.dataset}-{r.encounter_id}", f"aci-{r.encounter_id}", str(r.note).strip()) for r in df.itertuples()]


def load_mts(root: Path, parts: tuple[str, ...] = ("train", "valid")) -> list[tuple[str, str, str]]:
    frames = [pd.read_csv(root / "mts-dialog" / f"{p}.csv").assign(part=p) for p in parts]
    df = pd.concat(frames, ignore_index=True)
    out = []
    for i, r in enumerate(df.itertuples()):
        header = STYLES[i % len(STYLES)](MTS_HEADERS.get(str(r.section_header), str(r.section_header).title()))
        out.append((f"mts-{r.part}-{r.ID}", f"mts-{r.part}-{r.ID}", f"{header}\n{str(r.section_text).strip()}"))
    return out


def _nonblank(lines):
    return [ln.strip() for ln in lines if ln.strip()]


def score(notes, outputs: list[str]) -> dict:
    inj_total = inj_removed = orig_total = orig_removed = 0
    for note, out in zip(notes, outputs):
        left = Counter(_nonblank(out.split("\n")))
        orig = Counter(_nonblank(note.original))
        inj = Counter(_nonblank(note.injected))
        for line, n in orig.items():
            kept = min(n, left[line])
            orig_total += n
            orig_removed += n - kept
            left[line] -= kept
        for line, n in inj.items():
            inj_total += n
            inj_removed += n - min(n, left[line])
    return {
        "injected_lines": inj_total, "injected_removed": inj_removed,
        "injected_removed_pct": round(100 * inj_removed / max(inj_total, 1), 2),
        "original_lines": orig_total, "original_removed": orig_removed,
        "original_removed_pct": round(100 * orig_removed / max(orig_total, 1), 3),
    }


def run_detector(notes, ray) -> tuple[list[str], float]:
    from clinitune.curate.boilerplate import BoilerplateConfig, StripBoilerplate, find_boilerplate, strip_options

    cfg = BoilerplateConfig()
    df = pd.DataFrame({"note_id": [n.note_id for n in notes], "patient_id": [n.patient_id for n in notes],
                       "text": [n.text for n in notes], "status": "ok", "reason": None})
    t0 = time.perf_counter()
    ds = ray.data.from_pandas([df.iloc[i:i + 256] for i in range(0, len(df), 256)]).materialize()
    found = find_boilerplate(ds, cfg)
    step = StripBoilerplate(**strip_options(found, cfg))
    out = step(df.copy())
    return out["text"].tolist(), time.perf_counter() - t0


def run_line_frequency(notes) -> list[str]:
    """The replaced detector: frequent single lines, no clinical guard, no blocks."""
    def key(line: str) -> str | None:
        norm = " ".join(line.split())
        return None if len(norm) < 10 or norm.endswith(":") else norm.casefold()

    counts = Counter(k for n in notes for k in {key(x) for x in n.text.split("\n")} if k)
    threshold = max(20, math.ceil(0.05 * len(notes)))
    frequent = {k for k, c in counts.items() if c >= threshold}
    return ["\n".join(x for x in n.text.split("\n") if key(x) not in frequent) for n in notes]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--seed", type=int, default=7, help="Seed of families A-C (D, E and F have their own, fixed).")
    ap.add_argument("--only", nargs="+", choices=list("ABCDEF"), help="Run only these families.")
    args = ap.parse_args()
    import json

    import ray

    root = Path(args.data)
    if not (root / "aci-bench").is_dir():
        root = Path("/work/shared/data")
    corpora = {
        "aci-bench+mts-valid": load_aci(root) + load_mts(root, ("valid",)),
        "mts-train": load_mts(root, ("train",)),
    }
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)  # never a head someone started here
    ray.data.DataContext.get_current().enable_progress_bars = False
    runs = []
    plan = [("aci-bench+mts-valid", "A", "tune"), ("aci-bench+mts-valid", "B", "tune"), ("mts-train", "C", "tuned_on_c"),
            ("mts-train", "A", "other"), ("mts-train", "B", "other"), ("mts-train", "D", "tuned_on_de"),
            ("mts-train", "E", "tuned_on_de"), ("aci-bench+mts-valid", "D", "tuned_on_de"), ("aci-bench+mts-valid", "E", "tuned_on_de"),
            ("mts-train", "F", "held_out"), ("aci-bench+mts-valid", "F", "held_out")]
    for corpus, family, role in plan:
        if args.only and family not in args.only:
            continue
        if family == "F":
            notes = inject_family_f(corpora[corpus])
        else:
            notes = inject_heldout(corpora[corpus], family) if family in "DE" else inject(corpora[corpus], family, seed=args.seed)
        outputs, secs = run_detector(notes, ray)
        base = score(notes, run_line_frequency(notes))
        runs.append({"role": role, "corpus": corpus, "family": family, "notes": len(notes), "seconds": round(secs, 1),
                     "detector": score(notes, outputs), "baseline_line_frequency": base})
    held = [r["detector"] for r in runs if r["role"] == "held_out"]
    print(json.dumps({
        "benchmark": "boilerplate_removal",
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
        "runs": runs,
        "targets": {"injected_removed_pct": ">= 95", "original_removed_pct": "<= 0.5"},
        "held_out_meets_targets": bool(held) and all(h["injected_removed_pct"] >= 95 and h["original_removed_pct"] <= 0.5 for h in held),
    }, indent=2))


if __name__ == "__main__":
    main()
