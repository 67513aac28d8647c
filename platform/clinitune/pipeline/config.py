"""The continuous pipeline's typed config (``jobs/configs/pipeline.yaml`` documents every key)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from clinitune.config import RayAddress, StrictModel
from clinitune.registry.settings import RegistrySettings


class PipelineRegistrySettings(RegistrySettings):
    """Where candidates are registered and how serving hears about a new production version."""

    reload_url: str | None = Field(None, description="Serving reload endpoint POSTed (JSON) after production changes; null = only <workdir>/registry/production.json is written.")
    auto_promote: bool = Field(True, description="Promote a candidate the gate passes; false only registers it (alias candidate) for a person to promote.")


class ReviewSettings(StrictModel):
    """Clinician review campaigns the pipeline makes when the gate policy's human_review rule is on."""

    database_url: str | None = Field(None, description="Review database (SQLAlchemy URL) the campaigns go to; null = sqlite:///<workdir>/review.db. Serve it with `clinitune review serve --db <same URL>`.")
    items: int = Field(40, ge=1, description="Held-out items sampled into a run's campaign (stratified by the fairness slices).")
    seed: int = Field(0, description="Seed of the sample and of the blinded A/B order.")


class PipelineConfig(StrictModel):
    """New notes in an inbox -> curate -> train -> evaluate -> gate -> register -> promote, idempotent and resumable."""

    inbox: str = Field(..., description="Directory new note files arrive in (any format curation reads); files already processed are recognised by content hash and skipped.")
    workdir: str = Field("work/pipeline", description="Working directory: run state and log, per-run outputs, the default MLflow database.")
    curate_config: str | None = Field(None, description="Curation config YAML (jobs/configs/curate.yaml); null = defaults.")
    curate_overrides: dict[str, Any] = Field(default_factory=dict, description="Dotted curation keys set on top of curate_config (e.g. {split.test: 0.2}).")
    finetune_config: str = Field("jobs/configs/train.yaml", description="Finetune config YAML; the pipeline sets data.source, model (when starting from production), workdir, output_dir and the run name.")
    finetune_overrides: dict[str, Any] = Field(default_factory=dict, description="Dotted finetune keys set on top of finetune_config (e.g. {training.max_steps: 60}).")
    eval_config: str | None = Field(None, description="Eval config YAML (jobs/configs/evaluate.yaml); candidate, baseline, data, workdir and output_dir are set by the pipeline. null = defaults.")
    eval_overrides: dict[str, Any] = Field(default_factory=dict, description="Dotted eval keys set on top of eval_config (e.g. {max_examples: 80}).")
    gate_policy: str | None = Field(None, description="Gate policy YAML (jobs/configs/gate.yaml); null = the default policy.")
    gate_overrides: dict[str, Any] = Field(default_factory=dict, description="Dotted gate-policy keys set on top of gate_policy (e.g. {min_rag_gain: 0.0} when retrieval is deployed).")
    start_from: Literal["production", "base"] = Field("production", description="Train from the current production model (its adapter merged into its base) or always from the base model of finetune_config.")
    canaries: int = Field(8, ge=0, description="Canary records planted in each run's training split (0 = none; the PHI gate then has nothing to measure and rejects unless on_missing: skip).")
    canary_seed: int = Field(0, description="Seed of the canary identifiers (each run also mixes in its run id).")
    registry: PipelineRegistrySettings = Field(default_factory=PipelineRegistrySettings, description="Model registry and serving notification.")
    review: ReviewSettings = Field(default_factory=ReviewSettings, description="Clinician review campaigns (used when the gate policy's human_review is enabled: the run waits in awaiting_review until its campaign is closed).")
    ray_address: RayAddress = None  # every stage's

