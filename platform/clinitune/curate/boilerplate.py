"""Boilerplate: template lines repeated across many notes (disclaimers, signature blocks, banners).

Detection is global and distributed (:func:`find_boilerplate_lines`); removal is a row-local step
(``strip_boilerplate``) that receives the small set of line hashes found.

A line's key is the line stripped, with whitespace runs collapsed and case-folded, hashed with
xxhash64 (hex). Digits are *not* masked: masking would make "Aspirin 81 mg daily" and "Aspirin
325 mg daily" one line and widen removal to clinical content; exact repeats are the
conservative choice. Lines shorter than ``min_line_chars`` and section headers (lines ending in
``:``, such as "HISTORY OF PRESENT ILLNESS:") are never boilerplate: they are short, frequent
and carry the note's structure.

A line is boilerplate when it occurs in at least ``max(min_notes, ceil(min_note_fraction * N))``
distinct live notes, N being the number of live notes. Each note counts a line once.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import xxhash
from pydantic import Field

from clinitune.config import StrictModel, validate_config
from clinitune.curate.steps.base import Step, register_step
from clinitune.curate.steps.clean import collapse_blank_lines
from clinitune.schema import STATUS_COLUMN, STATUS_FILTERED, STATUS_OK

if TYPE_CHECKING:  # pragma: no cover
    import ray.data

log = logging.getLogger(__name__)

EMPTY_AFTER_BOILERPLATE = "empty_after_boilerplate"
_HASH_COLUMN = "line_hash"
_COUNT_COLUMN = "notes"
_HASHES_SCHEMA = pa.schema([(_HASH_COLUMN, pa.string())])


class BoilerplateConfig(StrictModel):
    """Detection and removal of template lines repeated across many notes."""

    enabled: bool = Field(True, description="Find and strip boilerplate lines.")
    min_note_fraction: float = Field(
        0.05, gt=0, le=1,
        description="A line is boilerplate if it appears in at least this fraction of the live notes.",
    )
    min_notes: int = Field(
        20, ge=2,
        description="...and in at least this many notes (guards small corpora, where a fraction is a handful).",
    )
    min_line_chars: int = Field(
        10, ge=1,
        description="Lines shorter than this (after stripping) are never boilerplate; nor are headers ending in ':'.",
    )
    max_lines: int = Field(
        10_000, ge=1,
        description="Most boilerplate lines kept (the most frequent win); more means the thresholds are too loose.",
    )
    num_partitions: int | None = Field(
        None, ge=1,
        description="Shuffle partitions for counting lines; null = the input's block count (capped by Ray's "
        "default hash-shuffle parallelism).",
    )


def _hash(norm: str) -> str:
    return xxhash.xxh64_hexdigest(norm.casefold().encode("utf-8"))


def line_key(line: str, min_line_chars: int) -> str | None:
    """The xxhash64 hex key of a candidate line, or None for lines that cannot be boilerplate."""
    norm = " ".join(line.split())
    if len(norm) < min_line_chars or norm.endswith(":"):
        return None
    return _hash(norm)


def note_line_keys(text: str, min_line_chars: int) -> set[str]:
    """The distinct candidate-line keys of one note."""
    keys = set()
    for line in text.split("\n"):
        k = line_key(line, min_line_chars)
        if k is not None:
            keys.add(k)
    return keys


def _line_hashes(batch: pd.DataFrame, min_line_chars: int) -> pa.Table:
    out: list[str] = []
    alive = batch[STATUS_COLUMN] == STATUS_OK
    for text in batch.loc[alive, "text"]:
        if isinstance(text, str):
            out.extend(note_line_keys(text, min_line_chars))
    return pa.Table.from_arrays([pa.array(out, type=pa.string())], schema=_HASHES_SCHEMA)


def boilerplate_threshold(num_notes: int, cfg: BoilerplateConfig) -> int:
    """Distinct notes a line must appear in to be boilerplate."""
    return max(cfg.min_notes, math.ceil(cfg.min_note_fraction * num_notes - 1e-9))


def find_boilerplate_lines(ds: "ray.data.Dataset", cfg: BoilerplateConfig) -> set[str]:
    """Line hashes that occur in enough live notes of ``ds`` to be boilerplate.

    A count of live notes fixes the threshold; then each note emits its distinct line hashes,
    ``groupby(line_hash).count()`` counts notes per line, and only the lines over the threshold
    (at most ``max_lines``) come back to the driver. Note text never leaves the workers. ``ds``
    is read twice, so pass a materialized dataset.
    """
    if not cfg.enabled:
        return set()
    from ray.data.aggregate import Count
    from ray.data.expressions import col

    from clinitune.curate.dedup import shuffle_partitions

    num_notes = ds.filter(expr=col(STATUS_COLUMN) == STATUS_OK).count()
    threshold = boilerplate_threshold(num_notes, cfg)
    if num_notes < threshold:
        return set()
    hashes = ds.map_batches(
        _line_hashes, fn_kwargs={"min_line_chars": cfg.min_line_chars}, batch_format="pandas", batch_size=1024
    )
    found = (
        hashes.groupby(_HASH_COLUMN, num_partitions=shuffle_partitions(ds, cfg.num_partitions))
        .aggregate(Count(alias_name=_COUNT_COLUMN))
        .filter(expr=col(_COUNT_COLUMN) >= threshold)
    )
    rows = found.take(cfg.max_lines + 1)
    if len(rows) > cfg.max_lines:
        log.warning(
            "more than %d boilerplate lines found, keeping the %d most frequent (raise "
            "boilerplate.min_note_fraction or boilerplate.max_lines)", cfg.max_lines, cfg.max_lines,
        )
        rows = found.sort([_COUNT_COLUMN, _HASH_COLUMN], descending=[True, False]).take(cfg.max_lines)
    result = {r[_HASH_COLUMN] for r in rows}
    log.info("boilerplate: %d line(s) in >= %d of %d notes", len(result), threshold, num_notes)
    return result


class StripOptions(StrictModel):
    """Options of the ``strip_boilerplate`` step."""

    line_hashes: list[str] = Field(default_factory=list, description="Line keys to remove (from find_boilerplate_lines).")
    max_blank_lines: int = Field(1, ge=0, description="Longest run of blank lines kept where lines were removed.")


def strip_lines(text: str, hashes: frozenset[str] | set[str], max_blank_lines: int = 1) -> tuple[str, int]:
    """Remove boilerplate lines from one note; returns (text, lines removed).

    Every non-blank line is looked up: short lines and headers were never hashed at detection,
    so they cannot be in ``hashes`` (whatever ``min_line_chars`` detection used).
    """
    kept: list[str] = []
    removed = 0
    for line in text.split("\n"):
        norm = " ".join(line.split())
        if norm and _hash(norm) in hashes:
            removed += 1
        else:
            kept.append(line)
    if not removed:
        return text, 0
    return collapse_blank_lines("\n".join(kept), max_blank_lines).strip(), removed


@register_step("strip_boilerplate")
class StripBoilerplate(Step):
    """Remove boilerplate lines from live notes; counts them in ``boilerplate_lines_removed``.

    A note left empty is filtered with reason ``empty_after_boilerplate``.
    """

    requires = ("text",)
    adds = ("boilerplate_lines_removed",)

    def __init__(self, **options: Any):
        o = validate_config(options, StripOptions, source="curation step 'strip_boilerplate' options")
        self.hashes = frozenset(o.line_hashes)
        self.max_blank_lines = o.max_blank_lines

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        alive = self.alive(batch).to_numpy()
        positions = np.flatnonzero(alive)
        removed = np.zeros(len(batch), dtype=np.int64)
        if len(positions) and self.hashes:
            col = batch.columns.get_loc("text")
            texts = batch["text"].to_numpy()
            results = [
                strip_lines(t, self.hashes, self.max_blank_lines) if isinstance(t, str) else (t, 0)
                for t in texts[positions]
            ]
            changed = [(p, r) for p, r in zip(positions, results) if r[1]]
            if changed:
                idx = [p for p, _ in changed]
                batch.iloc[idx, col] = [r[0] for _, r in changed]
                removed[idx] = [r[1] for _, r in changed]
                empty = pd.Series(False, index=batch.index)
                empty.iloc[idx] = [r[0] == "" for _, r in changed]
                self.mark(batch, empty, STATUS_FILTERED, EMPTY_AFTER_BOILERPLATE)
        batch["boilerplate_lines_removed"] = pd.arrays.IntegerArray(removed, mask=~alive)
        return batch
