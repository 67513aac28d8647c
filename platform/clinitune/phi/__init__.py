"""PHI de-identification: detect the 18 HIPAA Safe Harbor identifier kinds and redact them.

    from clinitune.phi import PhiEngine, PhiConfig
    engine = PhiEngine()
    spans = engine.detect(text, note_id="n1")              # [Span(start, end, type, score)]
    red = engine.redact(text, mode="surrogate", patient_id="p1", note_id="n1")
    red.text, red.spans, red.counts                           # counts: PHI kind -> number

Works offline on a CPU: compiled patterns, context rules and public lexicons (see data/SOURCES.json).
"""

from clinitune.phi.engine import PhiConfig, PhiEngine, PhiProcessingError
from clinitune.phi.redact import Redaction, audit
from clinitune.phi.types import ALL_PHI_TYPES, PhiType, Span

__all__ = ["PhiEngine", "PhiConfig", "PhiProcessingError", "Redaction", "Span", "PhiType", "ALL_PHI_TYPES", "audit"]
