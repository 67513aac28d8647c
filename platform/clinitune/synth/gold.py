"""Synthetic notes as gold-annotated training and evaluation notes for the PHI tagger.

The tagger's recipe (:mod:`clinitune.phi.training`, a floor below this one) cannot import the
generator; its callers (``clinitune phi train``, the benchmark, the tests) pass
:func:`gold_notes` in as the recipe's source of synthetic notes.
"""

from __future__ import annotations

from clinitune.phi.training.corpus import GoldNote


def gold_notes(n: int, seed: int) -> list[GoldNote]:
    """``n`` notes of ``clinitune synth notes`` with their gold spans (all 18 Safe Harbor kinds)."""
    from clinitune.synth.generate import iter_notes

    return [GoldNote(r["note_id"], r["patient_id"], r["text"], sorted((p["start"], p["end"], p["type"]) for p in r["phi"]), "synthetic")
            for r in iter_notes(n, seed, dup_rate=0.0, near_dup_rate=0.0, malformed_rate=0.0)]
