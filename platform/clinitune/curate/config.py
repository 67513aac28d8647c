"""The curation job's typed config (``jobs/configs/curate.yaml`` documents every key)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from clinitune.config import ExecutionSettings, StrictModel
from clinitune.curate.boilerplate import BoilerplateConfig
from clinitune.curate.dedup import DedupConfig
from clinitune.curate.readers.config import ReaderConfig
from clinitune.curate.split import SplitConfig
from clinitune.errors import ConfigError


class StepSpec(StrictModel):
    """One registered row-local step and its options."""

    name: str = Field(description="Registered step name (see `clinitune curate --list-steps`).")
    options: dict[str, Any] = Field(default_factory=dict, description="Keyword options passed to the step's constructor.")


def _steps(*names: str) -> list[StepSpec]:
    return [StepSpec(name=n) for n in names]


class DeidStageConfig(StrictModel):
    """De-identification of the surviving notes (runs after dedup, before the split)."""

    enabled: bool = Field(True, description="De-identify notes. Turning this off is unsafe and is recorded in the manifest and data card.")
    mode: Literal["tag", "mask", "surrogate"] = Field("tag", description="Redaction mode: 'tag' ([NAME]), 'mask' (****) or 'surrogate' (realistic, per-patient consistent; needs a secret key).")
    detector: Literal["ensemble", "rules"] | None = Field(None, description="PHI detector: 'ensemble' (learned tagger + rules, recall first) or 'rules' (faster, lower recall on unseen text); null: the engine's default, 'ensemble'.")
    options: dict[str, Any] = Field(default_factory=dict, description="Extra PHI engine options for the 'deidentify' step: min_score, types, secret_key_env, max_date_shift_days, max_chars.")
    pseudonymize_patient_ids: Literal["auto", "always", "never"] = Field("auto", description="Replace patient ids (often record numbers) with keyed pseudonyms from the secret key in secret_key_env (default CLINITUNE_DEID_KEY): 'always' (a missing key is an error), 'auto' (when the key is set; the manifest and data card say which happened), 'never'.")


class ExecutionConfig(ExecutionSettings):
    """How the job uses the Ray cluster."""

    batch_size: int = Field(256, ge=1, description="Notes per batch handed to each step.")
    concurrency: int | None = Field(None, ge=1, description="De-identification actors (fixed count); null = autoscale from 1 to as many as the cluster CPUs hold.")
    deid_num_cpus: float = Field(1.0, gt=0, description="CPUs reserved per de-identification actor.")
    rows_per_block: int = Field(
        2_000, ge=1,
        description="Notes per block once read: the records are re-cut into max(cluster CPUs, ceil(notes / rows_per_block)) "
        "blocks, so steps, shuffles and de-identification spread over the cluster even when one big input file "
        "is read as a single block.",
    )
    deid_num_gpus: float = Field(0.0, ge=0, description="GPUs per de-identification actor (e.g. 1, or 0.25 to share one); the learned PHI tagger then runs on it.")
    object_store_memory: int | None = Field(
        2 * 1024**3, ge=100 * 1024**2,
        description="Bytes of object store for a local Ray started by the job (ignored when joining a cluster): past "
        "it, Ray spills blocks to disk, so memory stays flat as the corpus grows; null = Ray's default (30 % of RAM).",
    )


class OutputConfig(StrictModel):
    """What is written and how."""

    compression: str = Field("zstd", description="Parquet compression codec.")
    max_rows_per_file: int = Field(200_000, ge=1, description="Upper bound on rows per output Parquet file.")
    keep_score_columns: bool = Field(True, description="Keep quality-score columns in the output for audit.")
    skip_if_unchanged: bool = Field(True, description="Re-running with the same inputs and config leaves the published output as it is.")


class CurateConfig(StrictModel):
    """Raw notes in; cleaned, de-identified, deduplicated, patient-split Parquet and a manifest out."""

    reader: ReaderConfig = Field(default_factory=ReaderConfig, description="Input formats, column mapping and validation limits.")
    pre_steps: list[StepSpec] = Field(default_factory=lambda: _steps("normalize_text"), description="Row-local steps run before boilerplate detection (text repair and normalisation).")
    boilerplate: BoilerplateConfig = Field(default_factory=BoilerplateConfig, description="Detection and removal of non-clinical template blocks repeated across many patients' notes.")
    steps: list[StepSpec] = Field(default_factory=lambda: _steps("quality_scores", "quality_filter"), description="Row-local steps run after boilerplate removal and before dedup (scores, then filters).")
    dedup: DedupConfig = Field(default_factory=DedupConfig, description="Exact and near-duplicate removal.")
    deid: DeidStageConfig = Field(default_factory=DeidStageConfig, description="PHI de-identification.")
    split: SplitConfig = Field(default_factory=SplitConfig, description="Patient-level train/validation/test split.")
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig, description="Ray execution settings.")
    output: OutputConfig = Field(default_factory=OutputConfig, description="Output format settings.")

    @model_validator(mode="after")
    def _no_reserved_steps(self) -> "CurateConfig":
        for spec in [*self.pre_steps, *self.steps]:
            if spec.name in ("deidentify", "patient_split", "strip_boilerplate"):
                raise ConfigError(
                    f"step '{spec.name}' is run by the pipeline itself and cannot be listed in steps. "
                    "Fix: configure it in its own section (deid, split, boilerplate)."
                )
        return self
