import pickle

import pandas as pd
import pytest

from clinitune.curate.steps.base import build_step
from clinitune.curate.steps.quality import FILTER_REASONS, QualityFilter, QualityScores, quality_scores
from clinitune.errors import ConfigError

NARRATIVE = (
    "Patient is a 67 year old man admitted with shortness of breath and bilateral leg swelling.\n"
    "He was started on intravenous furosemide with good diuresis overnight.\n"
    "Plan: continue diuresis, daily weights, repeat electrolytes in the morning."
)


def _batch(texts, statuses=None):
    n = len(texts)
    return pd.DataFrame(
        {"note_id": [f"n{i}" for i in range(n)], "text": texts, "status": statuses or ["ok"] * n, "reason": [None] * n}
    )


def test_scores_on_known_text():
    s = quality_scores("ab 12\ncd")
    assert s["q_chars"] == 8
    assert s["q_alpha_ratio"] == pytest.approx(4 / 6)
    assert s["q_mean_word_len"] == pytest.approx(2.0)
    assert quality_scores("añb 1")["q_alpha_ratio"] == pytest.approx(3 / 4)  # non-ASCII path
    assert quality_scores(NARRATIVE)["q_repetition"] < 0.05
    assert quality_scores(NARRATIVE + "\n" + NARRATIVE)["q_repetition"] == pytest.approx(0.5, abs=0.02)
    assert quality_scores("Denies chest pain today.\n" * 10)["q_repetition"] == pytest.approx(0.9)
    # word 3-gram repetition on a single line
    assert quality_scores("no acute distress " * 20)["q_repetition"] > 0.9


def test_scores_columns_only_on_live_rows():
    out = QualityScores()(_batch([NARRATIVE, "x", NARRATIVE], ["ok", "ok", "quarantined"]))
    assert out["q_chars"].tolist()[:2] == [len(NARRATIVE), 1]
    assert pd.isna(out["q_chars"].iloc[2]) and pd.isna(out["q_alpha_ratio"].iloc[2])
    assert str(out["q_chars"].dtype) == "Int64"
    assert out["status"].tolist() == ["ok", "ok", "quarantined"]


@pytest.mark.parametrize(
    "text, options, reason",
    [
        ("Too short.", {}, "too_short"),
        (NARRATIVE, {"max_chars": 100}, "too_long"),
        ("BP 120/80 HR 72 RR 16 T 98.6 SpO2 98% 12:30 14:45 3/4 10.2 7.35/40/90 " * 2, {}, "low_alpha_ratio"),
        ("Denies chest pain today.\n" * 10, {}, "high_repetition"),
        ("Attachment: " + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo" * 4, {}, "long_words"),
        (NARRATIVE, {}, None),
    ],
)
def test_each_filter_reason(text, options, reason):
    batch = QualityScores()(_batch([text]))
    out = QualityFilter(**options)(batch)
    assert out["reason"].iloc[0] == reason
    assert out["status"].iloc[0] == ("ok" if reason is None else "filtered")
    assert "q_repetition" in out.columns  # scores stay for audit


def test_first_failing_rule_wins_and_non_ok_untouched():
    # short AND low alpha AND repetitive: the first rule in the fixed order names it.
    batch = QualityScores()(_batch(["1 1 1 1 1 1", "1 1 1 1 1 1"], ["ok", "quarantined"]))
    out = QualityFilter()(batch)
    assert out["reason"].tolist() == ["too_short", None]
    assert out["status"].tolist() == ["filtered", "quarantined"]
    assert FILTER_REASONS == ("too_short", "too_long", "low_alpha_ratio", "high_repetition", "long_words")


def test_options_validated_and_picklable():
    step = build_step("quality_filter", {"min_chars": 5, "min_alpha_ratio": 0.1})
    assert pickle.loads(pickle.dumps(step)).options.min_chars == 5
    with pytest.raises(ConfigError, match="min_alpha_ratio"):
        build_step("quality_filter", {"min_alpha_ratio": 2})
    with pytest.raises(ConfigError):
        build_step("quality_scores", {"min_chars": 5})
