"""The continuous fine-tuning loop (``clinitune pipeline run``): new notes in an inbox are curated,
trained on (from the production model), evaluated, gated, registered and, when they pass,
promoted; idempotent and resumable, with a run log."""

from __future__ import annotations

from clinitune._lazy import lazy_getattr

_EXPORTS = {
    "PipelineConfig": "clinitune.pipeline.config",
    "run_pipeline": "clinitune.pipeline.runner",
    "pipeline_status": "clinitune.pipeline.runner",
    "PipelineResult": "clinitune.pipeline.runner",
    "STAGES": "clinitune.pipeline.runner",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
