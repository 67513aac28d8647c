"""The ``deidentify`` curation step: unit behaviour on pandas batches and the pipeline end to end."""

from __future__ import annotations

import json
import pickle

import pandas as pd
import pytest

from clinitune.curate.steps.base import build_step
from clinitune.curate.steps.deid import Deidentify
from clinitune.errors import ConfigError, UserError
from clinitune.schema import Q_DEID_FAILED, SPLITS

NOTE = "Mr. Hargrove seen by Dr. Lindqvist on 7/22/2019. Wife Helen called from Seattle: 410-322-1419."


def _batch(texts, statuses=None, patients=None):
    n = len(texts)
    return pd.DataFrame({
        "note_id": [f"n{i}" for i in range(n)],
        "patient_id": patients or ["p1"] * n,
        "text": texts,
        "status": statuses or ["ok"] * n,
        "reason": [None] * n,
        "detail": [None] * n,
    })


def test_tag_mode_redacts_live_rows_and_counts_kinds():
    step = build_step("deidentify")
    out = step(_batch([NOTE, NOTE, "BP 120/80, stable."], ["ok", "filtered", "ok"]))
    assert "Hargrove" not in out["text"][0] and "[NAME]" in out["text"][0]
    assert out["text"][1] == NOTE  # rows no longer alive are not touched
    counts = json.loads(out["phi_counts"][0])
    assert counts["NAME"] >= 3 and counts["DATE"] == 1 and counts["PHONE"] == 1
    assert pd.isna(out["phi_counts"][1]) and json.loads(out["phi_counts"][2]) == {}
    assert out["text"][2] == "BP 120/80, stable."


def test_unprocessable_note_is_quarantined_without_text():
    step = Deidentify(max_chars=200)
    out = step(_batch([NOTE, NOTE * 5, "\x02" * 150]))
    assert out["status"].tolist() == ["ok", "quarantined", "quarantined"]
    assert out["reason"].tolist()[1:] == [Q_DEID_FAILED, Q_DEID_FAILED]
    assert "limit" in out["detail"][1] and "binary" in out["detail"][2]
    assert "Hargrove" not in out["detail"][1] and pd.isna(out["phi_counts"][1])


def test_surrogate_mode_is_consistent_per_patient(monkeypatch):
    monkeypatch.setenv("CLINITUNE_DEID_KEY", "step-key")
    step = build_step("deidentify", {"mode": "surrogate"})
    out = step(_batch([NOTE, "Mr. Hargrove stable.", "Mr. Hargrove stable."], patients=["p1", "p1", "p2"]))
    sur = out["text"][1].split()[1].rstrip(".")
    assert sur != "Hargrove" and sur in out["text"][0]
    assert out["text"][2] != out["text"][1]


def test_options_are_validated():
    with pytest.raises(ConfigError, match="mode"):
        build_step("deidentify", {"mode": "blur"})
    with pytest.raises(ConfigError, match="bogus"):
        build_step("deidentify", {"bogus": 1})


def test_surrogate_without_key_fails_at_configuration(monkeypatch):
    monkeypatch.delenv("CLINITUNE_DEID_KEY", raising=False)
    with pytest.raises(UserError, match="CLINITUNE_DEID_KEY"):
        build_step("deidentify", {"mode": "surrogate"})


def test_step_pickles_without_engine_and_builds_it_once():
    step = build_step("deidentify")
    step(_batch([NOTE]))
    engine = step.engine
    step(_batch([NOTE]))
    assert step.engine is engine
    clone = pickle.loads(pickle.dumps(step))
    assert clone._engine is None and clone(_batch([NOTE]))["text"][0] == step(_batch([NOTE]))["text"][0]


@pytest.mark.ray
def test_pipeline_deidentifies_synthetic_notes_end_to_end(ray_session, tmp_path):
    from clinitune.curate.config import CurateConfig
    from clinitune.curate.pipeline import run_curation

    names = ["Hargrove", "Kowalczyk", "Lindqvist", "Delacroix", "Okafor", "Lindqvist"]
    recs = []
    for i in range(24):
        name, doc = names[i % 6], names[(i + 2) % 6]
        recs.append({
            "note_id": f"n{i}", "patient_id": f"p{i % 6}",
            "text": (f"Mr. {name} admitted on 3/{i % 27 + 1}/2021 to Kernwood {i % 9 + 1}. Seen by Dr. {doc}. "
                     f"Wife called from Towson at 410-555-{1000 + i}. MRN: 88{i:05d}. Lasix 40 mg IV given, "
                     f"BP {110 + i}/70, plan to wean oxygen, repeat labs in the morning, case {i}x{i * 7}."),
        })
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    cfg = CurateConfig()
    cfg.boilerplate.min_notes = 5
    cfg.execution.batch_size = 8
    out = tmp_path / "curated"
    run_curation([str(src)], out, cfg)
    frames = [pd.read_parquet(f) for s in SPLITS for f in sorted((out / s).glob("*.parquet"))]
    texts = pd.concat(frames, ignore_index=True)
    assert len(texts) == 24
    joined = "\n".join(texts["text"])
    for leaked in names + ["410-555", "Towson", "Kernwood", "/2021", "8800"]:
        assert leaked not in joined
    assert "Lasix 40 mg IV" in joined
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["deid"]["phi_counts"]["NAME"] >= 48 and manifest["deid"]["phi_counts"]["PHONE"] == 24
