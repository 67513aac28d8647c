"""Quality scores and the filter that reads them (score first, filter second).

``quality_scores`` adds, for every live note:

* ``q_chars`` - characters in the (cleaned) text;
* ``q_alpha_ratio`` - letters / non-whitespace characters (tables of numbers, base64 blobs of
  punctuation, and encoding debris score low);
* ``q_repetition`` - the larger of two repetition measures from the Gopher quality rules
  (Rae et al., 2021), both "the share of the note that repeats something earlier in it":
  the fraction of characters in non-empty lines that are exact repeats of an earlier line, and
  the fraction of word 3-grams (case-folded, whitespace-split) that repeat an earlier 3-gram.
  A note pasted twice scores about 0.5; a line repeated ten times about 0.9;
* ``q_mean_word_len`` - mean length of whitespace-separated words (encoded blobs score high).

``quality_filter`` marks failing notes ``filtered``; the first failing rule wins, in the fixed
order too_short, too_long, low_alpha_ratio, high_repetition, long_words.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from clinitune.config import StrictModel, validate_config
from clinitune.curate.steps.base import Step, register_step
from clinitune.schema import STATUS_FILTERED

SCORE_COLUMNS = ("q_chars", "q_alpha_ratio", "q_repetition", "q_mean_word_len")

_ASCII_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ASCII_SPACE = b" \t\n\r\x0b\x0c"


def _alpha_ratio(text: str) -> float:
    if text.isascii():
        raw = text.encode("ascii")
        n = len(raw)
        letters = n - len(raw.translate(None, _ASCII_LETTERS))
        visible = len(raw.translate(None, _ASCII_SPACE))
    else:
        letters = sum(1 for c in text if c.isalpha())
        visible = sum(1 for c in text if not c.isspace())
    return letters / visible if visible else 0.0


def _line_repetition(text: str) -> float:
    seen: set[str] = set()
    total = dup = 0
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        total += len(line)
        if line in seen:
            dup += len(line)
        else:
            seen.add(line)
    return dup / total if total else 0.0


def _ngram_repetition(words: list[str], n: int = 3) -> float:
    count = len(words) - n + 1
    if count <= 1:
        return 0.0
    grams = set(zip(*(words[i:] for i in range(n))))
    return 1.0 - len(grams) / count


def quality_scores(text: str) -> dict[str, Any]:
    """The score columns for one note (pure function)."""
    words = text.casefold().split()
    return {
        "q_chars": len(text),
        "q_alpha_ratio": _alpha_ratio(text),
        "q_repetition": max(_line_repetition(text), _ngram_repetition(words)),
        "q_mean_word_len": (sum(map(len, words)) / len(words)) if words else 0.0,
    }


@register_step("quality_scores")
class QualityScores(Step):
    """Add the ``q_*`` score columns to live rows (null on other rows)."""

    requires = ("text",)
    adds = SCORE_COLUMNS

    def __init__(self) -> None:  # no options: thresholds belong to quality_filter
        pass

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        alive = self.alive(batch).to_numpy()
        positions = np.flatnonzero(alive)
        texts = batch["text"].to_numpy()
        scores = [quality_scores(t if isinstance(t, str) else "") for t in texts[positions]]
        chars = np.zeros(len(batch), dtype=np.int64)
        chars[positions] = [s["q_chars"] for s in scores]
        batch["q_chars"] = pd.arrays.IntegerArray(chars, mask=~alive)
        for c in SCORE_COLUMNS[1:]:
            col = np.full(len(batch), np.nan)
            col[positions] = [s[c] for s in scores]
            batch[c] = col
        return batch


class QualityFilterOptions(StrictModel):
    """Thresholds of the ``quality_filter`` step (rules run in this order; first failure wins)."""

    min_chars: int = Field(50, ge=0, description="Notes shorter than this many characters are filtered as 'too_short'.")
    max_chars: int = Field(100_000, ge=1, description="Notes longer than this many characters are filtered as 'too_long'.")
    min_alpha_ratio: float = Field(
        0.5, ge=0, le=1,
        description="Minimum letters / non-whitespace characters; below it the note is 'low_alpha_ratio'. "
        "Narrative notes score about 0.7-0.85; vitals-only flowsheet dumps can score near 0.4.",
    )
    max_repetition: float = Field(
        0.5, ge=0, le=1,
        description="Maximum share of repeated lines / word 3-grams; above it the note is 'high_repetition'.",
    )
    max_mean_word_len: float = Field(
        20.0, gt=0,
        description="Maximum mean word length; above it (encoded blobs, run-together text) the note is 'long_words'.",
    )


_RULES = (
    ("too_short", lambda b, o: b["q_chars"] < o.min_chars),
    ("too_long", lambda b, o: b["q_chars"] > o.max_chars),
    ("low_alpha_ratio", lambda b, o: b["q_alpha_ratio"] < o.min_alpha_ratio),
    ("high_repetition", lambda b, o: b["q_repetition"] > o.max_repetition),
    ("long_words", lambda b, o: b["q_mean_word_len"] > o.max_mean_word_len),
)
FILTER_REASONS = tuple(name for name, _ in _RULES)


@register_step("quality_filter")
class QualityFilter(Step):
    """Filter live rows whose ``q_*`` scores fail a threshold (reason names the rule)."""

    requires = SCORE_COLUMNS
    adds = ()

    def __init__(self, **options: Any):
        self.options = validate_config(options, QualityFilterOptions, source="curation step 'quality_filter' options")

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        if not self.alive(batch).any():
            return batch
        for reason, rule in _RULES:
            # Step.mark only touches rows still ok, so an earlier rule's reason is never overwritten.
            failing = rule(batch, self.options).fillna(False).astype(bool)
            if failing.any():
                self.mark(batch, failing, STATUS_FILTERED, reason)
        return batch
