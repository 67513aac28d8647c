"""Annotated notes for training and evaluating the tagger: loading, patient folds.

Sources are read by path and held in memory only; nothing derived from them is written into the
project. Gold kinds are mapped onto Clinitune's taxonomy (:func:`clinitune.phi.labels.to_kind`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from clinitune.errors import InputPathError, UserError
from clinitune.phi.labels import to_kind


@dataclass
class GoldNote:
    note_id: str
    patient_id: str
    text: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, Clinitune kind)
    source: str = ""


def load_annotated(path: str | Path, source: str = "physionet") -> list[GoldNote]:
    """A JSONL corpus of ``{note_id, patient_id, text, phi: [{start, end, type}]}`` lines."""
    path = Path(path)
    if not path.is_file():
        raise InputPathError(f"annotated corpus '{path}' does not exist. Fix: pass the path of a JSONL file "
                             "with note_id, patient_id, text and phi spans (or set it to null to train without it).")
    notes = []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                text = rec["text"]
                spans = [(int(g["start"]), int(g["end"]), to_kind(g["type"])) for g in rec.get("phi", [])]
                if any(not 0 <= s < e <= len(text) for s, e, _ in spans):
                    raise ValueError("a span lies outside its text")
            except (ValueError, KeyError, TypeError) as err:
                raise UserError(f"{path} line {line_no} is not an annotated note ({type(err).__name__}: {err}).",
                                fix="each line needs note_id, patient_id, text and phi [{start, end, type}].") from None
            notes.append(GoldNote(str(rec.get("note_id", line_no)), str(rec.get("patient_id", rec.get("note_id", line_no))),
                                  text, sorted(spans), source))
    return notes


# Where synthetic gold notes come from: ``(n, seed) -> notes``. The generator lives a floor above
# (``clinitune.synth.gold.gold_notes``), so callers pass it in.
SyntheticSource = Callable[[int, int], "list[GoldNote]"]


def patient_folds(notes: list[GoldNote], k: int) -> list[list[int]]:
    """Note indices of ``k`` folds; every patient's notes in one fold, note counts balanced.

    Deterministic: patients sorted by note count (then id) go one by one to the smallest fold.
    """
    if k < 2:
        raise UserError(f"cross-validation needs at least 2 folds, got {k}.", fix="set folds to 2 or more.")
    by_patient: dict[str, list[int]] = {}
    for i, note in enumerate(notes):
        by_patient.setdefault(note.patient_id, []).append(i)
    if len(by_patient) < k:
        raise UserError(f"{len(by_patient)} patients cannot fill {k} folds.", fix="use fewer folds.")
    folds: list[list[int]] = [[] for _ in range(k)]
    for pid in sorted(by_patient, key=lambda p: (-len(by_patient[p]), p)):
        smallest = min(range(k), key=lambda f: (len(folds[f]), f))
        folds[smallest].extend(by_patient[pid])
    return [sorted(f) for f in folds]
