"""The hyperparameter-search job's typed config (``jobs/configs/tune.yaml`` documents every key)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from clinitune.config import StrictModel
from clinitune.errors import ConfigError
from clinitune.train.config import TrainConfig


class ParamSpec(StrictModel):
    """One searched hyperparameter."""

    type: Literal["loguniform", "uniform", "randint", "choice", "grid"] = Field(..., description="Distribution: loguniform/uniform (floats in [low, high]), randint (integers in [low, high)), choice (one of values), grid (every value, crossed with other grid params).")
    low: float | None = Field(None, description="Lower bound (loguniform, uniform, randint).")
    high: float | None = Field(None, description="Upper bound (loguniform, uniform, randint).")
    values: list[Any] | None = Field(None, description="Candidate values (choice, grid).")

    @model_validator(mode="after")
    def _bounds(self) -> "ParamSpec":
        if self.type in ("choice", "grid"):
            if not self.values:
                raise ValueError(f"type {self.type} needs a non-empty 'values' list")
        else:
            if self.low is None or self.high is None or self.low >= self.high:
                raise ValueError(f"type {self.type} needs low < high")
            if self.type == "loguniform" and self.low <= 0:
                raise ValueError("loguniform needs low > 0")
        return self


class AshaConfig(StrictModel):
    """Asynchronous successive halving: stop trials whose validation loss lags at a rung."""

    enabled: bool = Field(True, description="Stop unpromising trials early with ASHA.")
    grace_period: int = Field(1, ge=1, description="Optimizer steps every trial runs before it can be stopped.")
    reduction_factor: float = Field(2.0, gt=1, description="At each rung only the best 1/reduction_factor of trials continue.")
    max_t: int | None = Field(None, ge=1, description="Steps of the longest trial (null = the training config's total steps, or 10000).")


class TuneConfig(StrictModel):
    """Search over fine-tuning hyperparameters with Ray Tune; every trial is a Ray Train run."""

    finetune: TrainConfig = Field(..., description="The base fine-tuning config each trial starts from (see jobs/configs/train.yaml).")
    search_space: dict[str, ParamSpec] = Field(..., description="Dotted finetune-config paths -> distributions, e.g. training.learning_rate, lora.r, lora.alpha, lora.dropout, training.epochs.")
    search: Literal["optuna", "random", "grid"] = Field("optuna", description="Search algorithm: optuna (TPE), random sampling, or grid (every 'grid' value; num_samples repeats the grid).")
    num_samples: int = Field(8, ge=1, description="Trials to run (with search: grid, repetitions of the whole grid).")
    metric: str = Field("val_loss", description="Metric the search minimises or maximises (reported by every trial).")
    mode: Literal["min", "max"] = Field("min", description="Minimise or maximise the metric.")
    asha: AshaConfig = Field(default_factory=AshaConfig, description="Early stopping of weak trials.")
    max_concurrent_trials: int | None = Field(None, ge=1, description="Upper bound on trials at once; the cluster's free resources bound it too.")
    trial_driver_cpus: float = Field(0.1, gt=0, description="CPUs reserved for each trial's driver function (it only launches the TorchTrainer and waits; Ray Tune needs a non-zero request).")
    seed: int = Field(0, description="Seed of the search algorithm.")
    name: str | None = Field(None, description="Study name (directory under storage); null = derived from the config's content hash, so re-running resumes nothing but reuses the name.")
    storage_path: str | None = Field(None, description="Where trial runs and checkpoints go; null = <finetune.workdir>/tune.")
    output_dir: str | None = Field(None, description="Where the best trial's artifact and best_config.yaml are exported; null = <finetune.workdir>/models/<name>-best.")

    @model_validator(mode="after")
    def _search(self) -> "TuneConfig":
        if self.search == "grid" and any(p.type != "grid" for p in self.search_space.values()):
            raise ConfigError("search: grid needs every search_space entry to have type: grid.",
                              fix="set type: grid on each parameter, or use search: optuna / random.")
        if self.search != "grid" and any(p.type == "grid" for p in self.search_space.values()):
            raise ConfigError("search_space uses type: grid, which only search: grid supports.",
                              fix="use type: choice, or set search: grid.")
        return self
