"""The ``deidentify`` curation step: replace PHI in live notes and record counts per kind.

Options (YAML ``options:`` of the step): ``mode`` (``tag`` | ``mask`` | ``surrogate``, default
``tag``) plus any :class:`clinitune.phi.PhiConfig` field (``detector``, ``min_score``, ``types``,
``secret_key_env``, ``max_date_shift_days``, ``device``, ...). Surrogate mode reads its key from the
environment variable named by ``secret_key_env`` (default ``CLINITUNE_DEID_KEY``) on each worker.

Adds ``phi_counts``: a JSON object string of counts per PHI kind (never values). A note the engine
cannot process is quarantined with reason ``deid_failed`` and a detail naming the problem, never
the text. The engine is built once per step instance (so once per Ray actor) and reads each batch
in one call, so the learned tagger runs batched (on the actor's GPU when it has one).
"""

from __future__ import annotations

import json
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from clinitune.config import validate_config
from clinitune.curate.steps.base import Step, register_step
from clinitune.phi import PhiConfig, PhiEngine, PhiProcessingError
from clinitune.schema import DETAIL_COLUMN, Q_DEID_FAILED, STATUS_QUARANTINED


class DeidentifyOptions(PhiConfig):
    """Options of the ``deidentify`` step: the redaction mode and the engine's configuration."""

    mode: Literal["tag", "mask", "surrogate"] = Field("tag", description="How PHI is replaced: [KIND] tags, masks, or consistent surrogates.")


@register_step("deidentify")
class Deidentify(Step):
    """Replace PHI in live notes (tag, mask or surrogate) and add per-kind ``phi_counts``."""

    requires = ("note_id", "patient_id", "text")
    adds = ("phi_counts",)

    def __init__(self, **options: Any):
        self.options = validate_config(options, DeidentifyOptions, source="curation step 'deidentify' options")
        self._engine: PhiEngine | None = None
        if self.options.mode == "surrogate":
            self.options.resolve_key()  # fail at configuration time, not on the first batch

    def __getstate__(self) -> dict:
        return {"options": self.options, "_engine": None}

    @property
    def engine(self) -> PhiEngine:
        if self._engine is None:
            cfg = PhiConfig(**self.options.model_dump(exclude={"mode"}))
            self._engine = PhiEngine(cfg).warm_up()
        return self._engine

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        counts = np.full(len(batch), None, dtype=object)
        alive = self.alive(batch).to_numpy()
        if alive.any():
            texts = batch["text"].to_numpy(dtype=object).copy()
            details = batch[DETAIL_COLUMN].to_numpy(dtype=object).copy() if DETAIL_COLUMN in batch else np.full(len(batch), None, dtype=object)
            failed = np.zeros(len(batch), dtype=bool)
            rows = np.flatnonzero(alive)
            note_ids = [_text_or_none(v) for v in batch["note_id"].to_numpy(dtype=object)[rows]]
            patient_ids = [_text_or_none(v) for v in batch["patient_id"].to_numpy(dtype=object)[rows]]
            results = self.engine.redact_many(list(texts[rows]), mode=self.options.mode, patient_ids=patient_ids, note_ids=note_ids)
            for i, red in zip(rows, results):
                if isinstance(red, PhiProcessingError):
                    failed[i] = True
                    details[i] = red.reason
                    continue
                texts[i] = red.text
                counts[i] = json.dumps(red.counts, sort_keys=True)
            batch["text"] = texts
            if failed.any():
                batch[DETAIL_COLUMN] = details
                self.mark(batch, pd.Series(failed, index=batch.index), STATUS_QUARANTINED, Q_DEID_FAILED)
        batch["phi_counts"] = counts
        return batch


def _text_or_none(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value)
