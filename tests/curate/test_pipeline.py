"""End-to-end curation on the shared local Ray: accounting, splits, idempotency, publishing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from clinitune.curate.config import CurateConfig
from clinitune.curate.pipeline import run_curation
from clinitune.schema import SPLITS

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]


def _cfg(**kw) -> CurateConfig:
    cfg = CurateConfig()
    # Tiny corpus: boilerplate needs a floor it can reach; batches small so several actors work.
    cfg.boilerplate.min_notes = 5
    cfg.execution.batch_size = 16
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def _read(out: Path, sub: str) -> pd.DataFrame:
    files = sorted((out / sub).glob("*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else pd.DataFrame()


def test_mixed_directory_reconciles_exactly(ray_session, mixed_corpus, tmp_path):
    out = tmp_path / "curated"
    result = run_curation([str(mixed_corpus.root)], out, _cfg())
    m = json.loads((out / "manifest.json").read_text())
    c = m["counts"]
    assert c["input"] == mixed_corpus.n_records
    assert m["reconciles"] is True
    total = sum(c["output"].values()) + sum(c["quarantined"].values()) + sum(c["filtered"].values()) + sum(c["duplicates"].values())
    assert total == c["input"]
    assert c["quarantined"] == mixed_corpus.reasons
    assert c["duplicates"]["exact"] >= 1  # j-dup repeats j0's text
    assert any(s.endswith("README.pdf") for s in m["skipped_files"])
    assert (out / "DATASET_CARD.md").exists()
    assert result.manifest["dataset_hash"] == m["dataset_hash"]

    # What the manifest says is what the files hold.
    for split in SPLITS:
        assert len(_read(out, split)) == c["output"][split]
    q = _read(out, "quarantine")
    assert len(q) == sum(c["quarantined"].values())
    assert "text" not in q.columns  # the quarantine never holds note text
    assert q["location"].notna().all() and q["reason"].notna().all()
    dropped = _read(out, "dropped")
    assert len(dropped) == sum(c["filtered"].values()) + sum(c["duplicates"].values())
    assert "text" not in dropped.columns

    # No patient in two splits; nothing left behind beside the output.
    seen: dict[str, str] = {}
    for split in SPLITS:
        for pid in _read(out, split).get("patient_id", pd.Series(dtype=str)).unique():
            assert seen.setdefault(pid, split) == split, f"patient in two splits: {pid}"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".curated.")]


def test_rerun_is_idempotent_and_deterministic(ray_session, mixed_corpus, tmp_path):
    out = tmp_path / "curated"
    first = run_curation([str(mixed_corpus.root)], out, _cfg())
    again = run_curation([str(mixed_corpus.root)], out, _cfg())
    assert again.reused and again.manifest["run_id"] == first.manifest["run_id"]
    forced = run_curation([str(mixed_corpus.root)], out, _cfg(), force=True)
    assert not forced.reused
    assert forced.manifest["dataset_hash"] == first.manifest["dataset_hash"]
    assert forced.manifest["counts"] == first.manifest["counts"]


def test_output_is_deidentified(ray_session, tmp_path):
    src = tmp_path / "in.jsonl"
    recs = [
        {"note_id": f"n{i}", "patient_id": f"p{i}", "text": f"Pt John Smith{i} seen 03/14/2021. Call 617-555-01{i:02d}. MRN: 88{i:05d}. Stable, plan per team, follow-up labs in the morning."}
        for i in range(12)
    ]
    src.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    out = tmp_path / "curated"
    run_curation([str(src)], out, _cfg())
    texts = pd.concat([_read(out, s) for s in SPLITS], ignore_index=True)
    assert len(texts) == 12
    joined = "\n".join(texts["text"])
    assert "617-555" not in joined and "03/14/2021" not in joined and "88000" not in joined
    m = json.loads((out / "manifest.json").read_text())
    assert m["deid"]["enabled"] and sum(m["deid"]["phi_counts"].values()) >= 36


def test_crash_leftovers_are_recovered(ray_session, mixed_corpus, tmp_path):
    out = tmp_path / "curated"
    run_curation([str(mixed_corpus.root)], out, _cfg())
    # A crashed run leaves a staging dir; a crash mid-publish leaves the old output moved aside.
    stale = tmp_path / ".curated.staging-dead"
    (stale / "train").mkdir(parents=True)
    (stale / "train" / "part.parquet").write_bytes(b"partial")
    os.rename(out, tmp_path / ".curated.previous-dead")
    result = run_curation([str(mixed_corpus.root)], out, _cfg())
    assert result.reused  # the restored output matched: nothing recomputed, nothing doubled
    assert not stale.exists() and (out / "manifest.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".curated")) == []


def test_cli_user_errors_exit_2_without_traceback(tmp_path):
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    bad = subprocess.run(
        [sys.executable, "-m", "clinitune.cli.main", "curate", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o")],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and "does not exist" in bad.stderr
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dedupe: {}\n")
    (tmp_path / "x.jsonl").write_text("{}\n")
    bad = subprocess.run(
        [sys.executable, "-m", "clinitune.cli.main", "curate", "--input", str(tmp_path / "x.jsonl"), "--output", str(tmp_path / "o"), "--config", str(cfg)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert bad.returncode == 2 and "dedupe" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_curation_runs_on_two_node_cluster(mixed_corpus, tmp_path, local_cluster):
    """A head and a worker node started with cluster/local_cluster.sh; both must do work."""
    with local_cluster(workers=1, cpus=2) as cluster:
        cfg = tmp_path / "c.yaml"
        # Several read tasks and small batches so the scheduler spreads work over both nodes. This
        # tests the cluster, not de-identification: the rules detector spares each node's actors
        # loading the tagger (the ensemble's actor path: tests/phi/test_shipped.py).
        cfg.write_text("reader: {chunk_bytes: 2048}\nboilerplate: {min_notes: 5}\nexecution: {batch_size: 4}\n"
                       "deid: {detector: rules}\n")
        out = tmp_path / "curated"
        run = subprocess.run(
            [sys.executable, "-m", "clinitune.cli.main", "curate", "--input", str(mixed_corpus.root), "--output", str(out),
             "--config", str(cfg), "--ray-address", cluster.address],
            capture_output=True, text=True, env=cluster.env, timeout=600,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        assert f"joined Ray cluster at {cluster.address} (2 nodes: 4 CPUs" in run.stderr
        m = json.loads((out / "manifest.json").read_text())
        assert m["reconciles"] and m["counts"]["input"] == mixed_corpus.n_records
        assert len(m["execution"]["nodes"]) == 2, m["execution"]


def test_patient_ids_become_keyed_pseudonyms_when_a_key_is_set(ray_session, mixed_corpus, tmp_path, monkeypatch):
    """The key reaches the de-id actors from the driver's environment (the shared Ray's workers
    started without it); splits do not move; the card says what happened."""
    plain = tmp_path / "plain"
    run_curation([str(mixed_corpus.root)], plain, _cfg())
    monkeypatch.setenv("CLINITUNE_DEID_KEY", "test-secret-key")
    out = tmp_path / "pseudo"
    run_curation([str(mixed_corpus.root)], out, _cfg())
    m = json.loads((out / "manifest.json").read_text())
    assert m["deid"]["patient_ids"] == "pseudonymized" and m["config"]["deid"]["pseudonymize_patient_ids"] == "always"
    assert json.loads((plain / "manifest.json").read_text())["deid"]["patient_ids"] == "as given"
    before = pd.concat([_read(plain, s).assign(split=s) for s in SPLITS]).set_index("note_id").sort_index()
    after = pd.concat([_read(out, s).assign(split=s) for s in SPLITS]).set_index("note_id").sort_index()
    assert after["patient_id"].str.match(r"^pt-[0-9a-f]{20}$").all()
    assert (after["split"] == before["split"]).all()
    # one patient, one pseudonym: the grouping is kept exactly
    assert (after.groupby(before["patient_id"])["patient_id"].nunique() == 1).all()
    assert before["patient_id"].nunique() == after["patient_id"].nunique()
    assert "keyed pseudonyms" in (out / "DATASET_CARD.md").read_text()
