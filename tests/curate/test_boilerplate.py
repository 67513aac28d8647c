import pickle
import random

import pandas as pd
import pytest

from clinitune.curate.boilerplate import (
    EMPTY_AFTER_BOILERPLATE,
    BoilerplateConfig,
    StripBoilerplate,
    boilerplate_threshold,
    find_boilerplate_lines,
    line_key,
    strip_lines,
)
from clinitune.errors import ConfigError

SIGNED = "Electronically signed by the attending physician."
DISCLAIMER = "This document contains confidential health information."


def _batch(texts, statuses=None):
    n = len(texts)
    return pd.DataFrame(
        {"note_id": [f"n{i}" for i in range(n)], "text": texts, "status": statuses or ["ok"] * n, "reason": [None] * n}
    )


def test_line_key_normalises_and_skips_headers_and_short_lines():
    assert line_key("  Electronically   SIGNED by the attending physician. ", 10) == line_key(SIGNED, 10)
    assert line_key("HISTORY OF PRESENT ILLNESS:", 10) is None
    assert line_key("BP 120/80", 10) is None
    assert line_key("Aspirin 81 mg daily", 10) != line_key("Aspirin 325 mg daily", 10)  # digits not masked


def test_threshold_is_the_larger_of_count_and_fraction():
    cfg = BoilerplateConfig(min_notes=20, min_note_fraction=0.05)
    assert boilerplate_threshold(100, cfg) == 20
    assert boilerplate_threshold(1000, cfg) == 50
    assert boilerplate_threshold(1010, cfg) == 51
    with pytest.raises(ConfigError):
        from clinitune.config import validate_config

        validate_config({"min_note_fraction": 0}, BoilerplateConfig)


def test_strip_lines_counts_and_tidies():
    hashes = {line_key(SIGNED, 10), line_key(DISCLAIMER, 10)}
    text = f"HPI:\nCough for 3 days.\n\n{DISCLAIMER}\n\nPlan: rest.\n{SIGNED.upper()}"
    out, removed = strip_lines(text, hashes)
    assert (out, removed) == ("HPI:\nCough for 3 days.\n\nPlan: rest.", 2)
    assert strip_lines("Nothing to remove here.", hashes) == ("Nothing to remove here.", 0)


def test_step_adds_column_filters_empty_and_skips_non_ok():
    step = pickle.loads(pickle.dumps(StripBoilerplate(line_hashes=[line_key(SIGNED, 10)])))
    batch = _batch([f"Seen today.\n{SIGNED}", SIGNED, f"Raw.\n{SIGNED}"], ["ok", "ok", "quarantined"])
    out = step(batch)
    assert out["text"].tolist() == ["Seen today.", "", f"Raw.\n{SIGNED}"]
    assert out["boilerplate_lines_removed"].tolist()[:2] == [1, 1]
    assert pd.isna(out["boilerplate_lines_removed"].iloc[2])
    assert out["status"].tolist() == ["ok", "filtered", "quarantined"]
    assert out["reason"].iloc[1] == EMPTY_AFTER_BOILERPLATE
    with pytest.raises(ConfigError):
        StripBoilerplate(line_hashes="abc", extra=1)


def _corpus(n_live=300, seed=3):
    """Notes with lines planted in exact numbers of live notes; quarantined copies must not count."""
    rng = random.Random(seed)
    words = ["pain", "stable", "afebrile", "cough", "edema", "tolerating", "diet", "ambulating", "wound", "clean"]
    rows = []
    for i in range(n_live + 15):
        lines = ["HISTORY OF PRESENT ILLNESS:", " ".join(rng.choice(words) for _ in range(12)) + f" case {i}.", "BP 120/80"]
        if i < 20:
            lines.append(SIGNED)  # exactly at the threshold (20 of 300)
        if i < 19 or i >= n_live:
            lines.append(DISCLAIMER)  # 19 live notes + 15 quarantined ones: below the threshold
        rows.append({"note_id": f"n{i:04d}", "text": "\n".join(lines), "status": "ok" if i < n_live else "quarantined"})
    df = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    df["reason"] = None
    return df


@pytest.mark.ray
def test_find_boilerplate_lines_at_threshold_not_below(ray_session):
    df = _corpus()
    ds = ray_session.data.from_pandas([df.iloc[:100], df.iloc[100:200], df.iloc[200:]])
    cfg = BoilerplateConfig(min_notes=20, min_note_fraction=0.05)  # threshold max(20, 15) = 20
    found = find_boilerplate_lines(ds, cfg)
    assert found == {line_key(SIGNED, 10)}
    assert find_boilerplate_lines(ds, BoilerplateConfig(enabled=False)) == set()
    # Over max_lines: the most frequent lines are kept (SIGNED in 20 notes beats DISCLAIMER in 19).
    capped = find_boilerplate_lines(ds, BoilerplateConfig(min_notes=19, min_note_fraction=0.01, max_lines=1))
    assert capped == {line_key(SIGNED, 10)}
