"""One big input file must not become one block: every step, shuffle and the de-id actor pool
would then run as a single task (the 100k-note throughput run stalled that way)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from clinitune.curate.config import CurateConfig
from clinitune.curate.pipeline import run_curation, size_blocks
from clinitune.schema import SPLITS

pytestmark = pytest.mark.ray


def _read(out: Path, sub: str) -> pd.DataFrame:
    files = sorted((out / sub).glob("*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else pd.DataFrame()


def test_size_blocks_recuts_a_single_block_by_rows(ray_session):
    import ray

    ds = ray.data.from_items([{"i": i} for i in range(3000)], override_num_blocks=1).materialize()
    cut, read_blocks = size_blocks(ds, 500)
    assert read_blocks == 1 and cut.num_blocks() == 6
    assert [r["i"] for r in cut.take_all()] == list(range(3000))  # no row lost, order kept
    tiny, _ = size_blocks(ray.data.from_items([{"i": 0}], override_num_blocks=1).materialize(), 500)
    assert tiny.num_blocks() == 1  # never more blocks than rows


def test_one_big_file_is_spread_over_blocks_and_reconciles(ray_session, tmp_path):
    n = 3000
    recs = [{"note_id": f"n{i}", "patient_id": f"p{i % 97}", "text": f"Seen for cough {i}, plan rest and fluids, code w{i}q{i * 7}."} for i in range(n)]
    recs.append({"note_id": "n5", "patient_id": "p1", "text": "a reused id, quarantined"})
    src = tmp_path / "one.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    cfg = CurateConfig()
    cfg.deid.detector = "rules"
    cfg.execution.rows_per_block = 500
    cfg.steps = []  # tiny notes would fail the quality filter; this test is about blocks
    out = tmp_path / "curated"
    run_curation([str(src)], out, cfg)

    m = json.loads((out / "manifest.json").read_text())
    assert m["execution"]["blocks"]["read"] == 1
    assert m["execution"]["blocks"]["deid"] > 1
    c = m["counts"]
    assert c["input"] == n + 1 and m["reconciles"] is True
    assert sum(c["output"].values()) + sum(c["quarantined"].values()) + sum(c["filtered"].values()) + sum(c["duplicates"].values()) == n + 1
    assert c["quarantined"] == {"duplicate_note_id": 1}
    kept = pd.concat([_read(out, s) for s in SPLITS], ignore_index=True)
    dropped = _read(out, "dropped")
    ids = [*kept["note_id"], *(dropped["note_id"] if len(dropped) else [])]
    assert len(ids) == len(set(ids)) == n  # every valid note once, none twice
