import pickle

import pandas as pd
import pytest

from clinitune.curate.steps.base import build_step
from clinitune.curate.steps.clean import EMPTY_AFTER_CLEANING, NormalizeText, clean_text
from clinitune.errors import ConfigError


def _batch(texts, statuses=None):
    n = len(texts)
    return pd.DataFrame(
        {
            "note_id": [f"n{i}" for i in range(n)],
            "text": texts,
            "status": statuses or ["ok"] * n,
            "reason": [None] * n,
        }
    )


def test_repairs_mojibake_and_entities():
    assert clean_text("The patientâ€™s BP was stable") == "The patient's BP was stable"
    assert clean_text("Seen at the cafÃ© near clinic") == "Seen at the café near clinic"
    assert clean_text("Temp 38.2 Â°C") == "Temp 38.2 °C"
    assert clean_text("HR &lt; 60 &amp; stable") == "HR < 60 & stable"


def test_whitespace_normalised_but_lines_kept():
    raw = "CHIEF COMPLAINT:\r\n\tchest   pain  \r\n\r\n\r\n\r\nVITALS:\u00a0BP 120/80 \t\nHR 80\x00\x07\x1b   \n\n"
    out = clean_text(raw)
    assert out == "CHIEF COMPLAINT:\n chest pain\n\nVITALS: BP 120/80\nHR 80"
    assert out.split("\n")[0] == "CHIEF COMPLAINT:"  # line structure survives


def test_max_blank_lines_configurable():
    assert clean_text("a\n\n\n\n\nb", max_blank_lines=0) == "a\nb"
    assert clean_text("a\n\n\n\n\nb", max_blank_lines=2) == "a\n\n\nb"


def test_normalization_forms():
    text = "dose 5 mg/m² ＡＢＣ"
    assert clean_text(text, fix_unicode=False, normalization="NFC") == text
    assert clean_text(text, fix_unicode=False, normalization="NFKC") == "dose 5 mg/m2 ABC"
    decomposed = "cafe\u0301 visit"
    assert clean_text(decomposed, fix_unicode=False) == "caf\u00e9 visit"


def test_step_filters_empty_and_leaves_other_rows_alone():
    batch = _batch(
        ["  Patient   doing well.  ", " \t\n\x00\n ", "  raw   text kept\x00 ", None],
        ["ok", "ok", "quarantined", "ok"],
    )
    out = NormalizeText()(batch)
    assert out["text"].tolist()[:3] == ["Patient doing well.", "", "  raw   text kept\x00 "]
    assert out["status"].tolist() == ["ok", "filtered", "quarantined", "filtered"]
    assert out["reason"].tolist() == [None, EMPTY_AFTER_CLEANING, None, EMPTY_AFTER_CLEANING]


def test_registered_options_validated_and_picklable():
    step = build_step("normalize_text", {"normalization": "NFKC", "max_blank_lines": 2})
    clone = pickle.loads(pickle.dumps(step))
    assert clone(_batch(["ＡＢＣ   d\n\n\n\n\ne"]))["text"].iloc[0] == "ABC d\n\n\ne"
    with pytest.raises(ConfigError, match="normalization"):
        build_step("normalize_text", {"normalization": "NFD"})
    with pytest.raises(ConfigError, match="bogus"):
        build_step("normalize_text", {"bogus": True})
