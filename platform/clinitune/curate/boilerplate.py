"""Boilerplate that is boilerplate: repeated non-clinical *blocks* shared by many patients.

Template text (signature blocks, confidentiality disclaimers, banners, legal footers, fax cover
lines, page headers) repeats across the notes of many patients. So do real findings written the
same way ("No Known Allergies.", "Patient has never smoked.") and section headers: a line that
recurs in 5 % of one EHR's notes is often clinical. A line is removed only when all of these hold:

1. **Frequent**: its key (case-folded, whitespace collapsed, every digit run read as ``0`` and
   month names, weekday names and AM/PM left out, so page numbers, dates and times do not split a
   template) occurs in at least
   ``max(min_notes, ceil(min_note_fraction * N))`` distinct live notes (N = live notes);
2. **Across patients**: those notes belong to at least ``min_patients`` distinct patients (a
   patient's own copy-forward text is theirs, not the EHR's template);
3. **Not clinical**: :func:`clinitune.curate.clinical.clinical_evidence` finds no clinical content
   in it (section header in any style, drug, diagnosis word, negated finding, statement about the
   patient, measurement) - checked at detection on every occurrence (one clinical occurrence keeps
   the key) and again on the line itself at removal;
4. **In a repeated block**: it sits in a run of at least ``min_block_lines`` such lines, each
   *linked* to the next: the two lines follow each other (blank lines and decoration such as
   ``-----`` between them do not count) in at least ``min_link_share`` of the notes holding the
   rarer of the two - lines of one template travel together. A real line that sits next to a
   footer in a few of its notes only is not linked to it, so it is not swept in. A single
   non-clinical line between two linked lines (a signer's name) goes with the block when the two
   lines around it are linked at distance two (``max_gap_lines``).

Detection is two distributed passes over the live notes, keeping only small results on the driver:
(a) ``groupby(line_key).count()`` over each note's distinct line keys and pair keys (adjacent
lines and lines two apart) gives the frequent lines and frequent pairs; (b) for
those keys only, each note emits ``(line_key, patient_key)`` for non-clinical occurrences and a
``clinical`` flag, grouped by ``(line_key, patient_key)`` then by ``line_key``: distinct patients
and whether any occurrence was clinical. Keys are 64-bit xxhash integers; no text leaves a worker.

Removed lines are counted per kind (``signature``, ``confidentiality``, ``fax_cover``,
``page_header``, ``legal_footer``, ``banner``, ``other``; see :func:`block_kind`) in the per-note
JSON column ``boilerplate_removed``; the manifest sums them (counts only, never text).
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import xxhash
from pydantic import Field

from clinitune.config import StrictModel, validate_config
from clinitune.curate.clinical import clinical_evidence
from clinitune.curate.steps.base import Step, register_step
from clinitune.curate.steps.clean import collapse_blank_lines
from clinitune.schema import STATUS_COLUMN, STATUS_FILTERED, STATUS_OK

if TYPE_CHECKING:  # pragma: no cover
    import ray.data

log = logging.getLogger(__name__)

EMPTY_AFTER_BOILERPLATE = "empty_after_boilerplate"
REMOVED_COLUMN = "boilerplate_removed"
KINDS = ("signature", "confidentiality", "fax_cover", "page_header", "legal_footer", "banner", "other")
_KEY = "line_key"
_PATIENT = "patient_key"
_CLINICAL = "clinical"
_DIGITS_RE = re.compile(r"\d+")
# Date and time slots written in words: month and weekday names, AM/PM after a time (a template
# prints "Tuesday, March 4, 2024 10:22 AM" one way and another note's date another).
_WORD_SLOTS_RE = re.compile(
    r"\b(?:january|february|march|april|june|july|august|september|october|november|december|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?\b|\bmay(?= 0)|(?<=0) ?[ap]\.?m\b\.?"
)
_DECORATION_RE = re.compile(r"^[\W_]+$")
_KEYS_SCHEMA = pa.schema([(_KEY, pa.uint64())])
_PAIRS_SCHEMA = pa.schema([(_KEY, pa.uint64()), (_PATIENT, pa.uint64()), (_CLINICAL, pa.int8())])


class BoilerplateConfig(StrictModel):
    """Detection and removal of non-clinical template blocks repeated across many patients' notes."""

    enabled: bool = Field(True, description="Find and strip boilerplate blocks.")
    min_note_fraction: float = Field(
        0.01, gt=0, le=1,
        description="A line is frequent if it appears in at least this fraction of the live notes (digits ignored).",
    )
    min_notes: int = Field(
        20, ge=2,
        description="...and in at least this many notes (guards small corpora, where a fraction is a handful).",
    )
    min_patients: int = Field(
        5, ge=1,
        description="...and in notes of at least this many distinct patients (one patient's copied text is not a template).",
    )
    min_block_lines: int = Field(
        2, ge=1,
        description="Lines are removed only as a block: a run of at least this many frequent non-clinical lines "
        "(blank and decoration lines may separate them). 1 also removes lone lines.",
    )
    min_link_share: float = Field(
        0.5, gt=0, le=1,
        description="Two boilerplate lines are one block when they follow each other in at least this share of "
        "the notes holding the rarer of them.",
    )
    max_gap_lines: int = Field(
        1, ge=0, le=1,
        description="1: a non-clinical line that is not frequent itself (a signer's name) but sits between two lines "
        "of a block that are a frequent pair at distance two is removed with the block; 0: never.",
    )
    min_line_chars: int = Field(
        4, ge=1,
        description="Lines shorter than this (after stripping) are never counted as frequent.",
    )
    max_lines: int = Field(
        10_000, ge=1,
        description="Most frequent lines examined (the most frequent win); more means the thresholds are too loose.",
    )
    num_partitions: int | None = Field(
        None, ge=1,
        description="Shuffle partitions for counting lines; null = the input's block count (capped by Ray's "
        "default hash-shuffle parallelism).",
    )


# ---------------------------------------------------------------------------------------------
# Lines and keys


def _norm(line: str) -> str:
    return " ".join(line.split())


def line_key(line: str, min_line_chars: int = 1) -> int | None:
    """The 64-bit key of a line (case-folded, spaces collapsed, digit runs as 0, date and time
    words left out), or None when it
    cannot be boilerplate (too short, blank, or decoration only)."""
    norm = _norm(line)
    if len(norm) < min_line_chars or _DECORATION_RE.match(norm):
        return None
    return xxhash.xxh64_intdigest(_WORD_SLOTS_RE.sub("", _DIGITS_RE.sub("0", norm.casefold())).encode("utf-8"))


def _patient_key(patient_id: Any) -> int:
    return xxhash.xxh64_intdigest(str(patient_id).encode("utf-8", "surrogatepass"))


def note_line_keys(text: str, min_line_chars: int) -> set[int]:
    """The distinct candidate-line keys of one note."""
    keys = set()
    for line in text.split("\n"):
        k = line_key(line, min_line_chars)
        if k is not None:
            keys.add(k)
    return keys


def boilerplate_threshold(num_notes: int, cfg: BoilerplateConfig) -> int:
    """Distinct notes a line must appear in to be frequent."""
    return max(cfg.min_notes, math.ceil(cfg.min_note_fraction * num_notes - 1e-9))


def _live_texts(batch: pd.DataFrame) -> Iterable[tuple[str, Any]]:
    alive = batch[STATUS_COLUMN] == STATUS_OK
    pids = batch["patient_id"] if "patient_id" in batch.columns else pd.Series([None] * len(batch), index=batch.index)
    for text, pid in zip(batch.loc[alive, "text"], pids[alive]):
        if isinstance(text, str):
            yield text, pid


def pair_key(first: int, second: int, distance: int) -> int:
    """The key of two lines that follow each other at ``distance`` (1 adjacent, 2 one line apart)."""
    return xxhash.xxh64_intdigest(f"{first}:{second}".encode(), seed=distance)


def _content(lines: list[str], min_line_chars: int) -> list[tuple[int, int | None]]:
    """(index, key) of the lines that are neither blank nor decoration (key None when too short)."""
    out = []
    for i, line in enumerate(lines):
        norm = _norm(line)
        if norm and not _DECORATION_RE.match(norm):
            out.append((i, line_key(line, min_line_chars)))
    return out


def note_pair_keys(text: str, min_line_chars: int) -> set[int]:
    """The distinct pair keys of one note: content lines at distance 1 and 2."""
    keys = [k for _, k in _content(text.split("\n"), min_line_chars)]
    out = set()
    for d in (1, 2):
        for a, b in zip(keys, keys[d:]):
            if a is not None and b is not None:
                out.add(pair_key(a, b, d))
    return out


def _line_keys(batch: pd.DataFrame, min_line_chars: int) -> pa.Table:
    out: list[int] = []
    for text, _ in _live_texts(batch):
        out.extend(note_line_keys(text, min_line_chars))
        out.extend(note_pair_keys(text, min_line_chars))
    return pa.Table.from_arrays([pa.array(out, type=pa.uint64())], schema=_KEYS_SCHEMA)


def _patient_pairs(batch: pd.DataFrame, frequent: frozenset[int], min_line_chars: int) -> pa.Table:
    """(line_key, patient_key, clinical) for each frequent line of each live note, distinct per batch."""
    seen: set[tuple[int, int, int]] = set()
    for text, pid in _live_texts(batch):
        pkey = _patient_key(pid)
        verdicts: dict[int, bool] = {}
        for line in text.split("\n"):
            k = line_key(line, min_line_chars)
            if k is not None and k in frequent and not verdicts.get(k, False):
                verdicts[k] = clinical_evidence(line) is not None
        seen.update((k, pkey, int(c)) for k, c in verdicts.items())
    keys, patients, clinical = (list(x) for x in zip(*seen)) if seen else ([], [], [])
    return pa.Table.from_arrays(
        [pa.array(keys, pa.uint64()), pa.array(patients, pa.uint64()), pa.array(clinical, pa.int8())], schema=_PAIRS_SCHEMA
    )


@dataclass(frozen=True)
class Boilerplate:
    """What detection found: boilerplate line keys and the frequent pairs that link them."""

    lines: dict[int, int] = field(default_factory=dict)  # boilerplate line key -> notes holding it
    pairs: dict[int, int] = field(default_factory=dict)  # frequent pair key -> notes holding it

    def linked(self, a: int, b: int, distance: int, share: float) -> bool:
        n = self.pairs.get(pair_key(a, b, distance), 0)
        return n > 0 and n >= share * min(self.lines.get(a, 0), self.lines.get(b, 0))

    def __bool__(self) -> bool:
        return bool(self.lines)


def find_boilerplate(ds: "ray.data.Dataset", cfg: BoilerplateConfig) -> Boilerplate:
    """Lines that are frequent, shared by ``min_patients`` patients and never clinical, and the
    frequent pairs among them.

    ``ds`` is read three times (a count, then the two passes of the module docstring): pass a
    materialized dataset. Only keys and counts come back to the driver.
    """
    if not cfg.enabled:
        return Boilerplate()
    from ray.data.aggregate import Count, Max
    from ray.data.expressions import col

    from clinitune.curate.dedup import shuffle_partitions

    num_notes = ds.filter(expr=col(STATUS_COLUMN) == STATUS_OK).count()
    threshold = boilerplate_threshold(num_notes, cfg)
    if num_notes < threshold:
        return Boilerplate()
    parts = shuffle_partitions(ds, cfg.num_partitions)
    counted = (
        ds.map_batches(_line_keys, fn_kwargs={"min_line_chars": cfg.min_line_chars}, batch_format="pandas", batch_size=1024)
        .groupby(_KEY, num_partitions=parts)
        .aggregate(Count(alias_name="notes"))
        .filter(expr=col("notes") >= threshold)
    )
    # The frequent keys (section headers and their pairs among them) are few: a note has some
    # tens of lines.
    cap = 20 * cfg.max_lines
    rows = counted.take(cap + 1)
    if len(rows) > cap:
        rows = counted.sort(["notes", _KEY], descending=[True, False]).take(cap)
    counts = {int(r[_KEY]): int(r["notes"]) for r in rows}
    frequent = frozenset(counts)
    if not frequent:
        return Boilerplate()
    pairs = ds.map_batches(
        _patient_pairs, fn_kwargs={"frequent": frequent, "min_line_chars": cfg.min_line_chars},
        batch_format="pandas", batch_size=1024,
    )
    per_patient = pairs.groupby([_KEY, _PATIENT], num_partitions=parts).aggregate(Max(_CLINICAL, alias_name=_CLINICAL))
    per_key = per_patient.groupby(_KEY, num_partitions=parts).aggregate(
        Count(alias_name="patients"), Max(_CLINICAL, alias_name=_CLINICAL)
    )
    found = per_key.filter(expr=(col("patients") >= cfg.min_patients) & (col(_CLINICAL) == 0))
    rows = found.take(cfg.max_lines + 1)
    if len(rows) > cfg.max_lines:
        log.warning(
            "more than %d boilerplate lines found, keeping the %d shared by most patients (raise "
            "boilerplate.min_note_fraction or boilerplate.max_lines)", cfg.max_lines, cfg.max_lines,
        )
        rows = found.sort(["patients", _KEY], descending=[True, False]).take(cfg.max_lines)
    lines = {int(r[_KEY]): counts[int(r[_KEY])] for r in rows}
    # The frequent pair keys (and frequent clinical lines, never looked up as pairs).
    pairs = {k: n for k, n in counts.items() if k not in lines}
    log.info("boilerplate: %d frequent key(s) in >= %d of %d notes, %d non-clinical line(s) in >= %d patients",
             len(frequent), threshold, num_notes, len(lines), cfg.min_patients)
    return Boilerplate(lines, pairs)


def find_boilerplate_lines(ds: "ray.data.Dataset", cfg: BoilerplateConfig) -> set[int]:
    """The boilerplate line keys alone (see :func:`find_boilerplate`)."""
    return set(find_boilerplate(ds, cfg).lines)


def strip_options(found: Boilerplate, cfg: BoilerplateConfig) -> dict[str, Any]:
    """The ``strip_boilerplate`` step's options for what detection found under ``cfg``."""
    return {"line_counts": found.lines, "pair_counts": found.pairs, "min_block_lines": cfg.min_block_lines,
            "max_gap_lines": cfg.max_gap_lines, "min_link_share": cfg.min_link_share}


# ---------------------------------------------------------------------------------------------
# Removal


_KIND_CUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("fax_cover", re.compile(r"\bfax\b|\bcover sheet\b|\bpages? \(?including", re.I)),
    ("confidentiality", re.compile(r"confidential|privileged|intended (?:only )?for|intended recipient|unauthori[sz]ed|disclos|hipaa|protected health information", re.I)),
    ("signature", re.compile(r"\bsigned\b|signature|\bauthenticated\b|\bdictated\b|\btranscribed\b|\battested\b|\bcosign", re.I)),
    ("page_header", re.compile(r"\bpage \d+|\bprinted (?:on|by)\b|\bprint date\b|\brun date\b|\breport generated\b", re.I)),
    ("legal_footer", re.compile(r"copyright|\(c\)|©|all rights reserved|trademark|\blicen[cs]e|disclaimer|not (?:a )?substitute|terms of use", re.I)),
    ("banner", re.compile(r"^[\W_]*[A-Z0-9][A-Z0-9 '/&-]{3,}[\W_]*$|\*{3}|={3}|#{3}")),
)


def block_kind(lines: list[str]) -> str:
    """The kind of a removed block, by cue words of its lines in a fixed order (first match wins)."""
    for kind, cue in _KIND_CUES:
        if any(cue.search(line) for line in lines):
            return kind
    return "other"


class StripOptions(StrictModel):
    """Options of the ``strip_boilerplate`` step."""

    line_counts: dict[int, int] = Field(default_factory=dict, description="Boilerplate line key -> notes holding it (from find_boilerplate).")
    pair_counts: dict[int, int] = Field(default_factory=dict, description="Frequent pair key -> notes holding it (from find_boilerplate).")
    min_link_share: float = Field(0.5, gt=0, le=1, description="Share of the notes of the rarer line in which two lines must follow each other to be one block.")
    min_block_lines: int = Field(2, ge=1, description="Fewest boilerplate lines in a linked run for the run to be removed.")
    min_link_share: float = Field(
        0.5, gt=0, le=1,
        description="Two boilerplate lines are one block when they follow each other in at least this share of "
        "the notes holding the rarer of them.",
    )
    max_gap_lines: int = Field(1, ge=0, le=1, description="1: a non-clinical line between two lines that are a frequent pair at distance two goes with them.")
    max_blank_lines: int = Field(1, ge=0, description="Longest run of blank lines kept where lines were removed.")


def _blocks(lines: list[str], bp: Boilerplate, min_block: int, max_gap: int, share: float) -> list[tuple[int, int, list[int]]]:
    """(start, end, removed content indices) of each repeated block: runs of boilerplate lines, each
    linked to the next by a frequent pair (at distance 2 across one non-clinical gap line)."""
    content = _content(lines, 1)
    # Per content line: 'b' boilerplate, 'g' non-clinical other line (a possible gap), 'k' keep.
    marks = []
    for i, k in content:
        if clinical_evidence(lines[i]) is not None:
            marks.append("k")
        else:
            marks.append("b" if k in bp.lines else "g")
    spans = []
    j, n = 0, len(content)
    while j < n:
        if marks[j] != "b":
            j += 1
            continue
        members = [j]
        while True:
            last = members[-1]
            nxt = last + 1
            if nxt < n and marks[nxt] == "b" and bp.linked(content[last][1], content[nxt][1], 1, share):
                members.append(nxt)
            elif (max_gap and nxt + 1 < n and marks[nxt] == "g" and marks[nxt + 1] == "b"
                  and bp.linked(content[last][1], content[nxt + 1][1], 2, share)):
                members.extend([nxt, nxt + 1])
            else:
                break
        if sum(1 for m in members if marks[m] == "b") >= min_block:
            spans.append((content[members[0]][0], content[members[-1]][0] + 1, [content[m][0] for m in members]))
        j = members[-1] + 1
    return spans


def strip_blocks(text: str, bp: Boilerplate, min_block_lines: int = 2, max_gap_lines: int = 1,
                 max_blank_lines: int = 1, min_link_share: float = 0.5) -> tuple[str, dict[str, int]]:
    """Remove repeated boilerplate blocks from one note; returns (text, lines removed per kind)."""
    if not bp.lines:
        return text, {}
    lines = text.split("\n")
    # Cheap pre-check: a note with fewer boilerplate lines than a block needs is returned as is.
    if sum(1 for line in lines if line_key(line) in bp.lines) < min_block_lines:
        return text, {}
    spans = _blocks(lines, bp, min_block_lines, max_gap_lines, min_link_share)
    if not spans:
        return text, {}
    drop = np.zeros(len(lines), dtype=bool)
    removed: dict[str, int] = {}
    for s, e, members in spans:
        # Rules framing the block ("-----", "*****") go with it; blank lines are tidied below.
        while s > 0 and lines[s - 1].strip() and _DECORATION_RE.match(_norm(lines[s - 1])):
            s -= 1
        while e < len(lines) and lines[e].strip() and _DECORATION_RE.match(_norm(lines[e])):
            e += 1
        kind = block_kind([lines[i] for i in members])
        removed[kind] = removed.get(kind, 0) + sum(1 for i in range(s, e) if lines[i].strip())
        drop[s:e] = True
    kept = [line for line, d in zip(lines, drop) if not d]
    return collapse_blank_lines("\n".join(kept), max_blank_lines).strip(), removed


@register_step("strip_boilerplate")
class StripBoilerplate(Step):
    """Remove boilerplate blocks from live notes; counts removed lines per kind in ``boilerplate_removed``.

    A note left empty is filtered with reason ``empty_after_boilerplate``.
    """

    requires = ("text",)
    adds = ("boilerplate_lines_removed", REMOVED_COLUMN)

    def __init__(self, **options: Any):
        o = validate_config(options, StripOptions, source="curation step 'strip_boilerplate' options")
        self.bp = Boilerplate(dict(o.line_counts), dict(o.pair_counts))
        self.options = o

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        alive = self.alive(batch).to_numpy()
        positions = np.flatnonzero(alive)
        removed = np.zeros(len(batch), dtype=np.int64)
        kinds = np.full(len(batch), None, dtype=object)
        if len(positions) and self.bp:
            o = self.options
            col = batch.columns.get_loc("text")
            texts = batch["text"].to_numpy()
            empty = pd.Series(False, index=batch.index)
            for p in positions:
                t = texts[p]
                if not isinstance(t, str):
                    continue
                out, by_kind = strip_blocks(t, self.bp, o.min_block_lines, o.max_gap_lines, o.max_blank_lines, o.min_link_share)
                if by_kind:
                    batch.iat[p, col] = out
                    removed[p] = sum(by_kind.values())
                    kinds[p] = json.dumps(by_kind, sort_keys=True)
                    empty.iloc[p] = out == ""
            if empty.any():
                self.mark(batch, empty, STATUS_FILTERED, EMPTY_AFTER_BOILERPLATE)
        batch["boilerplate_lines_removed"] = pd.arrays.IntegerArray(removed, mask=~alive)
        batch[REMOVED_COLUMN] = kinds
        return batch
