import pickle
from collections import Counter

import pandas as pd
import pytest

from clinitune.config import validate_config
from clinitune.curate.split import PatientSplit, SplitConfig, assign_split
from clinitune.curate.steps.base import build_step
from clinitune.errors import ConfigError


def test_ratios_approximately_right_and_deterministic():
    cfg = SplitConfig()
    patients = [f"MRN{i:07d}" for i in range(10_000)]
    first = [assign_split(p, cfg) for p in patients]
    counts = Counter(first)
    assert abs(counts["train"] / 10_000 - 0.8) < 0.015
    assert abs(counts["validation"] / 10_000 - 0.1) < 0.01
    assert abs(counts["test"] / 10_000 - 0.1) < 0.01
    assert first == [assign_split(p, SplitConfig()) for p in patients]
    resalted = [assign_split(p, SplitConfig(salt="other")) for p in patients]
    assert 0.2 < sum(a != b for a, b in zip(first, resalted)) / 10_000 < 0.45


def test_uneven_ratios_and_zero_share():
    cfg = SplitConfig(train=0.5, validation=0.0, test=0.5)
    counts = Counter(assign_split(f"p{i}", cfg) for i in range(4000))
    assert counts["validation"] == 0 and abs(counts["train"] / 4000 - 0.5) < 0.03


def test_step_keeps_each_patient_in_one_split():
    rows = [(f"n{i}", f"p{i % 500}") for i in range(3000)]  # six notes per patient
    batch = pd.DataFrame(
        {"note_id": [r[0] for r in rows], "patient_id": [r[1] for r in rows], "status": "ok", "reason": None}
    )
    batch.loc[7, "status"] = "filtered"
    step = pickle.loads(pickle.dumps(build_step("patient_split", SplitConfig().model_dump())))
    out = step(batch)
    live = out[out["status"] == "ok"]
    assert live.groupby("patient_id")["split"].nunique().max() == 1
    assert set(live["split"]) == {"train", "validation", "test"}
    assert pd.isna(out.loc[7, "split"]) and out.loc[7, "status"] == "filtered"
    # the same patient gets the same split in another batch / worker
    again = PatientSplit()(batch.iloc[::-1].reset_index(drop=True))
    assert dict(zip(again["note_id"], again["split"]))["n0"] == out.loc[0, "split"]


def test_live_row_without_patient_is_quarantined():
    batch = pd.DataFrame({"note_id": ["a", "b"], "patient_id": [None, " "], "status": "ok", "reason": None})
    out = PatientSplit()(batch)
    assert out["status"].tolist() == ["quarantined", "quarantined"]
    assert out["reason"].tolist() == ["missing_patient_id", "missing_patient_id"]


def test_bad_ratios_are_config_errors():
    with pytest.raises(ConfigError, match="sum to 0.9.*Fix"):
        SplitConfig(train=0.7, validation=0.1, test=0.1)
    with pytest.raises(ConfigError, match="split.train"):
        validate_config({"train": 0.9, "validation": 0.2, "test": 0.0}, SplitConfig)
    with pytest.raises(ConfigError, match="test"):
        validate_config({"test": -0.1}, SplitConfig)
    with pytest.raises(ConfigError):
        build_step("patient_split", {"train": 1.0})
    ok = SplitConfig(train=0.7, validation=0.2, test=0.1 + 5e-7)
    assert ok.train == 0.7
