"""Evaluation and the promotion gate (``clinitune evaluate``).

* ``run_evaluation(EvalConfig) -> EvalResult``: candidate vs baseline on held-out patients: task
  metrics, held-out loss, forgetting probes, PHI canaries, hallucinated codes, fairness slices and
  consistency, written as ``report.json`` and a self-contained ``report.html``.
* ``GatePolicy``, ``decide(report, policy)``: promote or reject, with reasons.
* ``plant_canaries(dataset_dir, out_dir, n, seed)``: made-up identifiers planted in a training split.
"""

from __future__ import annotations

from clinitune._lazy import lazy_getattr

_EXPORTS = {
    "EvalConfig": "clinitune.evaluate.config",
    "run_evaluation": "clinitune.evaluate.runner",
    "gate_report": "clinitune.evaluate.runner",
    "EvalResult": "clinitune.evaluate.runner",
    "GatePolicy": "clinitune.evaluate.gate",
    "Decision": "clinitune.evaluate.gate",
    "decide": "clinitune.evaluate.gate",
    "load_policy": "clinitune.evaluate.gate",
    "plant_canaries": "clinitune.evaluate.canaries",
    "make_canaries": "clinitune.evaluate.canaries",
    "read_canaries": "clinitune.evaluate.canaries",
    "Canary": "clinitune.evaluate.canaries",
    "read_report": "clinitune.evaluate.report",
    "write_report": "clinitune.evaluate.report",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
