"""Which model registry a job talks to: the settings evaluation, the pipeline and serving share.

Kept apart from the client so configs can name a registry without importing MLflow.
"""

from __future__ import annotations

from pydantic import Field

from clinitune.config import StrictModel

DEFAULT_MODEL_NAME = "clinitune-icd10"


class RegistrySettings(StrictModel):
    """The MLflow model registry and the registered model in it."""

    tracking_uri: str | None = Field(None, description="MLflow tracking URI of the model registry; null = $MLFLOW_TRACKING_URI or sqlite:///<workdir>/mlflow.db.")
    model_name: str = Field(DEFAULT_MODEL_NAME, description="Registered model name.")
