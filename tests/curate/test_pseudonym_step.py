"""The pseudonymize_ids step: keyed, stable, live rows only, and a clear error without a key."""

from __future__ import annotations

import pandas as pd
import pytest

from clinitune.curate.steps.base import build_step
from clinitune.errors import ConfigError


def _batch() -> pd.DataFrame:
    return pd.DataFrame({"note_id": ["a", "b", "c", "d"], "patient_id": ["MRN001", "MRN002", "MRN001", "MRN003"],
                         "status": ["ok", "ok", "ok", "quarantined"], "reason": [None, None, None, "empty_text"]})


def test_live_patient_ids_become_stable_keyed_pseudonyms(monkeypatch):
    monkeypatch.setenv("CLINITUNE_DEID_KEY", "k1")
    out = build_step("pseudonymize_ids")(_batch())
    p = out["patient_id"].tolist()
    assert p[0] == p[2] != p[1] and all(x.startswith("pt-") and len(x) == 23 for x in p[:3])
    assert "MRN" not in "".join(p[:3]) and p[3] == "MRN003"  # rows out of play are not touched
    monkeypatch.setenv("CLINITUNE_DEID_KEY", "k2")
    assert build_step("pseudonymize_ids")(_batch())["patient_id"][0] != p[0]  # another key, other pseudonyms


def test_missing_key_fails_at_configuration_naming_the_variable(monkeypatch):
    monkeypatch.delenv("CLINITUNE_DEID_KEY", raising=False)
    with pytest.raises(ConfigError, match="CLINITUNE_DEID_KEY") as err:
        build_step("pseudonymize_ids")
    assert "Fix:" in str(err.value) and "never" in str(err.value)


def test_unknown_column_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("CLINITUNE_DEID_KEY", "k1")
    with pytest.raises(ConfigError, match="'mrn'"):
        build_step("pseudonymize_ids", {"columns": ["mrn"]})(_batch())
