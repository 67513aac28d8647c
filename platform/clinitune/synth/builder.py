"""Notes are built from segments so that every gold span is exact by construction.

A template appends plain text, PHI values and diagnosis mentions to a :class:`Section`; the
note is the concatenation of its sections. ``assemble`` walks the segments once and records each
PHI span and diagnosis span at the offset where it was placed: offsets are never found by
searching the finished text. Near-duplicate edits work on segments too, so they keep every span
exact (they only touch plain and vital-sign segments).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clinitune.phi.types import ALL_PHI_TYPES


@dataclass(slots=True)
class Seg:
    text: str
    phi: str | None = None  # a PhiType value when this segment is a PHI value
    code: str | None = None  # an ICD-10-CM code when this segment names a diagnosis
    vital: bool = False  # a vital-sign value a near duplicate may change


@dataclass(slots=True)
class Section:
    """A part of a note; optional sections are dropped first when a note is over its budget."""

    segs: list[Seg] = field(default_factory=list)
    required: bool = True

    def t(self, text: str) -> "Section":
        if text:
            self.segs.append(Seg(text))
        return self

    def phi(self, value: str, phi_type: str) -> "Section":
        if not value:
            raise ValueError("a PHI segment needs a non-empty value")
        kind = getattr(phi_type, "value", phi_type)  # PhiType members are stored as plain strings
        if kind not in ALL_PHI_TYPES:
            raise ValueError(f"unknown PHI type {kind!r}")
        self.segs.append(Seg(value, phi=kind))
        return self

    def dx(self, mention: str, code: str) -> "Section":
        self.segs.append(Seg(mention, code=code))
        return self

    def vital(self, value: str) -> "Section":
        self.segs.append(Seg(value, vital=True))
        return self

    def __len__(self) -> int:
        return sum(len(s.text) for s in self.segs)


@dataclass(slots=True)
class Assembled:
    text: str
    phi: list[dict]  # [{"start", "end", "type"}]
    dx: list[dict]  # [{"start", "end", "code"}]


def fit_sections(sections: list[Section], max_chars: int) -> list[Seg]:
    """Keep every required section and, in order, each optional one that still fits the budget."""
    budget = max_chars - sum(len(s) for s in sections if s.required)
    segs: list[Seg] = []
    for sec in sections:
        if not sec.required:
            size = len(sec)
            if size > budget:
                continue
            budget -= size
        segs.extend(sec.segs)
    return segs


def assemble(segs: list[Seg]) -> Assembled:
    parts: list[str] = []
    phi: list[dict] = []
    dx: list[dict] = []
    pos = 0
    for s in segs:
        end = pos + len(s.text)
        if s.phi is not None:
            phi.append({"start": pos, "end": end, "type": s.phi})
        elif s.code is not None:
            dx.append({"start": pos, "end": end, "code": s.code})
        parts.append(s.text)
        pos = end
    return Assembled("".join(parts), phi, dx)
