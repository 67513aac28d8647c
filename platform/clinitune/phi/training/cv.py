"""Patient-level cross-validation of the tagger on an annotated corpus.

Fold ``k``'s tagger trains on the other folds' notes (plus synthetic and augmented notes) and never
sees fold ``k``'s patients. Fold models are kept under ``out_dir/fold<k>`` (outside the project:
they are trained on the corpus) and reused when their config has not changed.
"""

from __future__ import annotations

import json
from pathlib import Path

from clinitune.phi.tagger import META_FILE
from clinitune.phi.training.corpus import GoldNote, SyntheticSource, load_annotated, patient_folds
from clinitune.phi.training.train import PhiTrainConfig, Reporter, train_tagger


def fold_config(cfg: PhiTrainConfig) -> PhiTrainConfig:
    """The config a fold model is trained with: the final one without its annotated paths."""
    return cfg.model_copy(update={"data": cfg.data.model_copy(update={"annotated": [], "holdout": None}), "output": None})


# What decides the weights; the operating point (threshold, calibration, span cutoff) and the
# licence label do not, and are read from the config at evaluation time.
_TRAINING_KEYS = ("seed", "data", "model", "training")


def _fresh(model_dir: Path, cfg: PhiTrainConfig) -> bool:
    meta = model_dir / META_FILE
    if not meta.is_file():
        return False
    try:  # through the config class, so a key added since (with its default) compares equal
        saved = json.loads(PhiTrainConfig.model_validate(json.loads(meta.read_text(encoding="utf-8")).get("config", {})).model_dump_json())
    except ValueError:
        return False
    want = json.loads(cfg.model_dump_json())
    return all(saved.get(k) == want[k] for k in _TRAINING_KEYS)


def fold_models(cfg: PhiTrainConfig, corpus: str | Path, k: int, out_dir: str | Path, *,
                only: list[int] | None = None, report: Reporter | None = None,
                synthetic: SyntheticSource | None = None) -> tuple[list[GoldNote], list[list[int]], list[Path]]:
    """Train (or reuse) one tagger per fold; returns the notes, the folds and the model dirs."""
    notes = load_annotated(corpus)
    folds = patient_folds(notes, k)
    out_dir = Path(out_dir)
    fcfg = fold_config(cfg)
    dirs = []
    for f, held in enumerate(folds):
        model_dir = out_dir / f"fold{f}"
        dirs.append(model_dir)
        if only is not None and f not in only:
            continue
        if _fresh(model_dir, fcfg):
            continue
        held_set = set(held)
        train = [n for i, n in enumerate(notes) if i not in held_set]
        if report:
            report(f"fold {f}: training on {len(train)} notes of {len({n.patient_id for n in train})} patients")
        train_tagger(fcfg, annotated=train, synthetic=synthetic, output=model_dir, report=report)
    return notes, folds, dirs
