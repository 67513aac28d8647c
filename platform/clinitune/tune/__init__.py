"""Hyperparameter search over fine-tuning on Ray Tune (``clinitune tune``).

* ``run_tune(TuneConfig) -> TuneOutcome``: ASHA + Optuna (or random / grid) over
  ``run_finetune`` trials; exports the best artifact and config.
"""

from __future__ import annotations

from clinitune._lazy import lazy_getattr

_EXPORTS = {
    "TuneConfig": "clinitune.tune.config",
    "run_tune": "clinitune.tune.runner",
    "TuneOutcome": "clinitune.tune.runner",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
