"""Patient-level train/validation/test split.

A patient's split is a pure function of ``salt`` and ``patient_id``: xxhash64 of
``salt + "\\x00" + patient_id`` scaled to a number u in [0, 1), bucketed by the cumulative ratios
(u < train -> train, u < train + validation -> validation, else test). Every note of a patient
therefore lands in the same split, on any worker, in any run, with no coordination; changing
the salt re-draws the assignment. Ratios hold in expectation over patients (not over notes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xxhash
from pydantic import Field, model_validator

from clinitune.config import StrictModel, validate_config
from clinitune.curate.steps.base import Step, register_step
from clinitune.errors import ConfigError
from clinitune.schema import Q_MISSING_PATIENT, SPLITS, STATUS_QUARANTINED

_TWO_64 = float(1 << 64)


class SplitConfig(StrictModel):
    """Patient-level train/validation/test split."""

    train: float = Field(0.8, ge=0, le=1, description="Share of patients in the training split.")
    validation: float = Field(0.1, ge=0, le=1, description="Share of patients in the validation split.")
    test: float = Field(0.1, ge=0, le=1, description="Share of patients in the test split.")
    salt: str = Field(
        "clinitune-split-v1", min_length=1,
        description="Salt of the patient hash; keep it fixed so a patient stays in the same split across runs.",
    )

    @model_validator(mode="after")
    def _ratios_sum_to_one(self) -> "SplitConfig":
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ConfigError(
                f"split ratios train={self.train}, validation={self.validation}, test={self.test} sum to "
                f"{total:.6g}, not 1. Fix: set split.train, split.validation and split.test so they add up to 1."
            )
        return self


def _uniform(patient_id: str, salt: str) -> float:
    return xxhash.xxh64_intdigest(f"{salt}\x00{patient_id}".encode("utf-8")) / _TWO_64


def assign_split(patient_id: str, cfg: SplitConfig) -> str:
    """The split of one patient: 'train', 'validation' or 'test'."""
    u = _uniform(str(patient_id), cfg.salt)
    if u < cfg.train:
        return SPLITS[0]
    if u < cfg.train + cfg.validation:
        return SPLITS[1]
    return SPLITS[2]


@register_step("patient_split")
class PatientSplit(Step):
    """Add column ``split`` to live rows (null on others); a live row with no patient is quarantined."""

    requires = ("patient_id",)
    adds = ("split",)

    def __init__(self, **options: Any):
        self.cfg = validate_config(options, SplitConfig, source="curation step 'patient_split' options")

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        alive = self.alive(batch)
        pids = batch["patient_id"]
        missing = alive & (pids.isna() | (pids.astype(object).map(lambda p: isinstance(p, str) and not p.strip())))
        if missing.any():
            self.mark(batch, missing, STATUS_QUARANTINED, Q_MISSING_PATIENT)
            alive = self.alive(batch)
        split = np.full(len(batch), None, dtype=object)
        live_ids = pids[alive]
        if len(live_ids):
            cache = {p: assign_split(p, self.cfg) for p in pd.unique(live_ids)}
            split[np.flatnonzero(alive.to_numpy())] = [cache[p] for p in live_ids]
        batch["split"] = split
        return batch
