"""The learned tagger's label scheme: BIO tags over the PHI kinds, and the kinds of other corpora.

Every Clinitune PHI kind gets a ``B-`` and an ``I-`` tag; ``O`` is not PHI. Gold spans of other
annotation schemes map onto the kinds here (PhysioNet deid's ``HCPName`` is a ``NAME``, ...).
"""

from __future__ import annotations

from clinitune.phi.types import ALL_PHI_TYPES

OUTSIDE = "O"
LABELS: tuple[str, ...] = (OUTSIDE, *(f"{p}-{k}" for k in ALL_PHI_TYPES for p in ("B", "I")))
LABEL_ID = {label: i for i, label in enumerate(LABELS)}
# Label index -> PHI kind (None for O), and kind -> (B index, I index).
KIND_OF = [None if label == OUTSIDE else label[2:] for label in LABELS]
KIND_TAGS = {k: (LABEL_ID[f"B-{k}"], LABEL_ID[f"I-{k}"]) for k in ALL_PHI_TYPES}

# Gold kinds of the PhysioNet deid corpus (v1.1) -> Clinitune kinds.
PHYSIONET_KIND = {
    "HCPName": "NAME", "PTName": "NAME", "PTNameInitial": "NAME", "RelativeProxyName": "NAME",
    "Location": "LOCATION", "Date": "DATE", "DateYear": "YEAR", "Phone": "PHONE", "Age": "AGE", "Other": "ID",
}


def to_kind(gold_type: str) -> str:
    """A gold span's kind in Clinitune's taxonomy (Clinitune kinds pass through unchanged)."""
    if gold_type in KIND_TAGS:
        return gold_type
    kind = PHYSIONET_KIND.get(gold_type)
    if kind is None:
        raise ValueError(f"unknown gold PHI type {gold_type!r}: map it in clinitune.phi.labels.PHYSIONET_KIND")
    return kind
