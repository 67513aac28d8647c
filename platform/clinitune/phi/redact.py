"""Redaction: replace detected spans with tags, masks or consistent surrogates; audit by kind.

``Redaction.counts`` and :func:`audit` carry only counts per PHI kind — never a value — so they
may be logged, stored in manifests and shown in reports.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clinitune.phi.surrogate import Surrogator
from clinitune.phi.types import ALL_PHI_TYPES, Span

if TYPE_CHECKING:  # pragma: no cover
    from clinitune.phi.engine import PhiConfig


@dataclass
class Redaction:
    """The redacted text, the spans found in the original text, and a count per PHI kind."""

    text: str
    spans: list[Span] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    note_id: str | None = None
    mode: str = "tag"

    def audit(self) -> dict:
        """A summary safe to log: note id, mode, counts per kind and total. No PHI values."""
        return audit(self.spans, note_id=self.note_id, mode=self.mode)


def audit(spans: list[Span], *, note_id: str | None = None, mode: str | None = None) -> dict:
    counts = count_by_type(spans)
    out: dict = {"note_id": note_id, "total": sum(counts.values()), "counts": counts}
    if mode is not None:
        out["mode"] = mode
    return out


def count_by_type(spans: list[Span]) -> dict[str, int]:
    c = Counter(s.type for s in spans)
    return {t: c[t] for t in ALL_PHI_TYPES if c[t]}


def _mask(value: str, char: str) -> str:
    return "".join(ch if ch.isspace() else char for ch in value)


def redact_spans(text: str, spans: list[Span], *, mode: str, key: bytes, patient_id: str | None,
                 note_id: str | None, config: "PhiConfig") -> Redaction:
    """Apply ``mode`` to ``spans`` (sorted, non-overlapping offsets into ``text``)."""
    surrogator = None
    if mode == "surrogate":
        scope = f"patient:{patient_id}" if patient_id else f"note:{note_id or ''}"
        surrogator = Surrogator(key, scope, config.max_date_shift_days)
    out: list[str] = []
    pos = 0
    for s in spans:
        out.append(text[pos:s.start])
        value = text[s.start:s.end]
        if mode == "tag":
            out.append(f"[{s.type}]")
        elif mode == "mask":
            out.append(_mask(value, config.mask_char))
        else:
            out.append(surrogator.replace(s.type, value))  # type: ignore[union-attr]
        pos = s.end
    out.append(text[pos:])
    return Redaction("".join(out), list(spans), count_by_type(spans), note_id=note_id, mode=mode)
