"""The continuous fine-tuning loop (``clinitune pipeline run``): new notes in an inbox are curated,
trained on (from the production model), evaluated, gated, registered and, when they pass,
promoted; idempotent and resumable, with a run log."""

from __future__ import annotations

_EXPORTS = {
    "PipelineConfig": "clinitune.pipeline.config",
    "run_pipeline": "clinitune.pipeline.runner",
    "pipeline_status": "clinitune.pipeline.runner",
    "PipelineResult": "clinitune.pipeline.runner",
    "STAGES": "clinitune.pipeline.runner",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'clinitune.pipeline' has no attribute {name!r}")
