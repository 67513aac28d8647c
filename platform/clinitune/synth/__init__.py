"""Synthetic clinical notes with gold PHI spans and ICD-10-CM labels (``clinitune synth notes``).

Public API (imported lazily):

* ``generate_note(seed, index, **opts) -> dict`` and ``iter_notes(n, seed, **opts)``: in-process.
* ``generate_dataset(n, out, seed, options=SynthOptions(...))``: JSONL shards + manifest, on Ray Data.
"""

from __future__ import annotations

from clinitune._lazy import lazy_getattr

_EXPORTS = {
    "generate_note": "clinitune.synth.generate",
    "iter_notes": "clinitune.synth.generate",
    "SynthOptions": "clinitune.synth.generate",
    "generate_dataset": "clinitune.synth.writer",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
