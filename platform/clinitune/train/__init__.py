"""Fine-tuning on Ray Train: LoRA, QLoRA and full (DeepSpeed ZeRO) from one config (``clinitune train``).

* ``run_finetune(TrainConfig) -> Path``: pre-flight, dataset build, TorchTrainer, artifact.
* ``TrainConfig``: the typed config (``jobs/configs/train.yaml``).
* ``load_artifact(dir)``: the descriptor of a trained model artifact.
"""

from __future__ import annotations

from clinitune._lazy import lazy_getattr

_EXPORTS = {
    "TrainConfig": "clinitune.train.config",
    "run_finetune": "clinitune.train.trainer",
    "prepare": "clinitune.train.trainer",
    "build_trainer": "clinitune.train.trainer",
    "load_artifact": "clinitune.train.artifact",
    "train_loop_per_worker": "clinitune.train.loop",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
