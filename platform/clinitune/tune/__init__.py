"""Hyperparameter search over fine-tuning on Ray Tune (``clinitune tune``).

* ``run_tune(TuneConfig) -> TuneOutcome``: ASHA + Optuna (or random / grid) over
  ``run_finetune`` trials; exports the best artifact and config.
"""

from __future__ import annotations

_EXPORTS = {
    "TuneConfig": "clinitune.tune.config",
    "run_tune": "clinitune.tune.runner",
    "TuneOutcome": "clinitune.tune.runner",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'clinitune.tune' has no attribute {name!r}")
