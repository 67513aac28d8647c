"""Write a synthetic note set: JSONL shards plus ``_synth_manifest.json``, published whole.

Notes are cut into fixed shards of ``notes_per_file`` consecutive indices; shard ``k`` becomes
``notes-{k:05d}.jsonl``. A shard's bytes depend only on (seed, options, its index range), so the
output is byte-identical whether the shards are written by Ray Data on a cluster or one after
another in this process. Everything is written into a staging directory beside the output,
which is renamed into place only once every file and the manifest are complete (the staging
directory must be on storage every Ray worker can write, e.g. a shared mount, for a cluster).
The manifest's counts are computed from the records written, never assumed from the rates.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from clinitune.artifacts.publish import publish_whole
from clinitune.errors import InputPathError, UserError
from clinitune.phi.types import ALL_PHI_TYPES
from clinitune.synth.generate import NOTE_TYPES, SynthOptions, note_line
from clinitune.synth.malformed import MALFORMED_KINDS

log = logging.getLogger(__name__)

MANIFEST_NAME = "_synth_manifest.json"
DEFAULT_NOTES_PER_FILE = 10_000
MANIFEST_KIND = "clinitune.synth.notes"


def shard_name(shard: int) -> str:
    return f"notes-{shard:05d}.jsonl"


def plan_shards(n: int, notes_per_file: int) -> list[tuple[int, int, int]]:
    """(shard, first index, stop index) for notes 0..n-1."""
    return [(k, start, min(n, start + notes_per_file)) for k, start in enumerate(range(0, n, notes_per_file))]


def write_shard(directory: str | Path, seed: int, shard: int, start: int, stop: int, options: SynthOptions) -> dict:
    """Write notes [start, stop) to ``directory/notes-{shard}.jsonl``; return the shard's counts."""
    name = shard_name(shard)
    digest = hashlib.sha256()
    types: Counter = Counter()
    phi: Counter = Counter()
    bands: Counter = Counter()
    sexes: Counter = Counter()
    dups: Counter = Counter()
    codes: set[str] = set()
    patients: set[str] = set()
    malformed: list[dict] = []
    labels = size = 0
    with open(Path(directory) / name, "wb") as fh:
        for line_no, index in enumerate(range(start, stop), 1):
            line, record, kind = note_line(seed, index, options)
            fh.write(line)
            digest.update(line)
            size += len(line)
            if kind is not None:
                malformed.append({"note_id": record["note_id"], "kind": kind, "file": name, "line": line_no})
                continue
            types[record["note_type"]] += 1
            bands[record["age_band"]] += 1
            sexes[record["sex"]] += 1
            patients.add(record["patient_id"])
            if record["dup_kind"]:
                dups[record["dup_kind"]] += 1
            phi.update(s["type"] for s in record["phi"])
            codes.update(record["icd10"])
            labels += len(record["icd10"])
    return {
        "shard": shard, "name": name, "records": stop - start, "bytes": size, "sha256": digest.hexdigest(),
        "note_types": dict(types), "phi": dict(phi), "age_bands": dict(bands), "sex": dict(sexes),
        "duplicates": dict(dups), "codes": sorted(codes), "patients": sorted(patients), "labels": labels,
        "malformed": malformed,
    }


def _ray_shard_batch(batch: dict, directory: str, seed: int, options: dict) -> dict:
    import numpy as np

    opts = SynthOptions(**options)
    stats = [
        json.dumps(write_shard(directory, seed, int(k), int(a), int(b), opts))
        for k, a, b in zip(batch["shard"], batch["start"], batch["stop"])
    ]
    return {"stats": np.array(stats, dtype=object)}


def _write_with_ray(staging: Path, seed: int, options: SynthOptions, shards: list[tuple[int, int, int]]) -> list[dict]:
    import ray

    items = [{"shard": k, "start": a, "stop": b} for k, a, b in shards]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    ds = ds.map_batches(
        _ray_shard_batch,
        batch_size=1,
        batch_format="numpy",
        fn_kwargs={"directory": str(staging), "seed": seed, "options": options.as_dict()},
    )
    return [json.loads(row["stats"]) for row in ds.take_all()]


def build_manifest(n: int, seed: int, options: SynthOptions, notes_per_file: int, shard_stats: list[dict]) -> dict:
    """Merge per-shard counts (in shard order) into the run's manifest."""
    shard_stats = sorted(shard_stats, key=lambda s: s["shard"])
    total = lambda key: sum((Counter(s[key]) for s in shard_stats), Counter())  # noqa: E731
    types, phi, bands, sexes, dups = (total(k) for k in ("note_types", "phi", "age_bands", "sex", "duplicates"))
    malformed = [m for s in shard_stats for m in s["malformed"]]
    by_kind = Counter(m["kind"] for m in malformed)
    patients: set[str] = set()
    codes: set[str] = set()
    for s in shard_stats:
        patients.update(s["patients"])
        codes.update(s["codes"])
    return {
        "kind": MANIFEST_KIND,
        "format_version": 1,
        "n": n,
        "seed": seed,
        "options": {**options.as_dict(), "notes_per_file": notes_per_file},
        "records": sum(s["records"] for s in shard_stats),
        "files": [{"name": s["name"], "records": s["records"], "bytes": s["bytes"], "sha256": s["sha256"]} for s in shard_stats],
        "patients": len(patients),
        "note_types": {t: types.get(t, 0) for t in NOTE_TYPES},
        "duplicates": {"exact": dups.get("exact", 0), "near": dups.get("near", 0)},
        "malformed": {
            "total": len(malformed),
            "by_kind": {k: by_kind.get(k, 0) for k in MALFORMED_KINDS},
            "records": malformed,
        },
        "phi_spans": {t: phi.get(t, 0) for t in ALL_PHI_TYPES},
        "icd10": {"distinct_codes": len(codes), "labels": sum(s["labels"] for s in shard_stats)},
        "age_bands": {b: bands.get(b, 0) for b in ("18-39", "40-64", "65-89", "90+")},
        "sex": {x: sexes.get(x, 0) for x in ("F", "M")},
    }


@dataclass(frozen=True)
class SynthResult:
    out_dir: Path
    manifest_path: Path
    manifest: dict
    seconds: float


def _check_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputPathError(f"--out '{out}' exists and is a file.", fix="pass a directory path (new or empty).")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputPathError(f"--out '{out}' is a directory that is not empty.", fix="pass a new or empty directory, or --overwrite to replace it.")


def generate_dataset(
    n: int,
    out: str | Path,
    seed: int = 0,
    *,
    options: SynthOptions | None = None,
    notes_per_file: int = DEFAULT_NOTES_PER_FILE,
    overwrite: bool = False,
    use_ray: bool = True,
    ray_address: str | None = None,
) -> SynthResult:
    """Generate ``n`` notes into ``out`` (JSONL shards + manifest), on Ray Data or in-process."""
    if not isinstance(n, int) or n < 1:
        raise UserError(f"--n is {n!r}, not a positive number of notes.", fix="pass --n 1 or more.")
    if not isinstance(notes_per_file, int) or notes_per_file < 1:
        raise UserError(f"--notes-per-file is {notes_per_file!r}.", fix="pass --notes-per-file 1 or more (default 10000).")
    options = (options or SynthOptions()).validated()
    out = Path(out).expanduser().absolute()
    _check_output(out, overwrite)
    shards = plan_shards(n, notes_per_file)
    began = time.perf_counter()
    with publish_whole(out, require=MANIFEST_NAME) as staging:
        if use_ray:
            from clinitune.ray_utils import connect

            connect(ray_address)
            stats = _write_with_ray(staging, seed, options, shards)
        else:
            stats = [write_shard(staging, seed, k, a, b, options) for k, a, b in shards]
        written = sorted(s["name"] for s in stats)
        expected = [shard_name(k) for k, _, _ in shards]
        if written != expected:
            raise RuntimeError(f"synth: {len(written)} shard(s) written, {len(expected)} planned")
        manifest = build_manifest(n, seed, options, notes_per_file, stats)
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    seconds = time.perf_counter() - began
    log.info("synth: wrote %d notes in %d file(s) to %s in %.1fs", n, len(shards), out, seconds)
    return SynthResult(out, out / MANIFEST_NAME, manifest, seconds)
