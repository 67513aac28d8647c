"""The review web application's typed config (``jobs/configs/review.yaml`` documents every key)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from clinitune.config import StrictModel, renamed_keys
from clinitune.registry.settings import RegistrySettings


class ServerSettings(StrictModel):
    """Where ``clinitune review serve`` listens."""

    host: str = Field("127.0.0.1", description="Interface to bind (0.0.0.0 behind a TLS-terminating proxy in a cluster).")
    port: int = Field(8600, ge=1, le=65535, description="TCP port.")
    forwarded_allow_ips: str | None = Field(None, description="Proxy addresses whose X-Forwarded-For/Proto headers are trusted (comma-separated; null = none): the client address for the sign-in rate limit and https detection come from them.")


class SessionSettings(StrictModel):
    """Server-side sessions (the cookie holds a random token; the database holds its hash)."""

    idle_minutes: int = Field(30, ge=1, description="A session unused this long expires (sign in again).")
    max_hours: float = Field(12, gt=0, description="A session expires this long after sign-in, used or not.")
    secure_cookies: Literal["auto", "always", "never"] = Field("auto", description="Secure flag on cookies: auto = when the request came over https (directly or via a trusted proxy).")


class SignInSettings(StrictModel):
    """Passwords and the sign-in rate limit."""

    max_failures: int = Field(5, ge=1, description="Failed sign-ins for one user name from one address within the window before further attempts are refused.")
    max_failures_per_ip: int = Field(30, ge=1, description="Failed sign-ins from one address (any user name) within the window before further attempts are refused.")
    window_minutes: int = Field(15, ge=1, description="Sliding window of the rate limit.")
    min_password_length: int = Field(12, ge=8, description="Shortest password accepted when an account is created or its password changed.")


class ReviewConfig(StrictModel):
    """Clinician review: campaigns, accounts, sessions and where the results go."""

    database_url: str | None = Field(None, description="SQLAlchemy URL of the review database (postgresql+psycopg://... at scale); null = sqlite:///<workdir>/review.db. Migrated to the latest schema on start.")
    workdir: str = Field("work", description="Working directory (the default database, and the registry's default MLflow database).")
    secret_env: str = Field("CLINITUNE_REVIEW_SECRET", description="Environment variable holding the key that signs sign-in form tokens; unset = a random key made once and kept in the database.")
    server: ServerSettings = Field(default_factory=ServerSettings, description="Listening address.")
    sessions: SessionSettings = Field(default_factory=SessionSettings, description="Session lifetime and cookies.")
    sign_in: SignInSettings = Field(default_factory=SignInSettings, description="Password length and sign-in rate limit.")
    comment_max_chars: int = Field(2000, ge=1, description="Longest reviewer comment accepted (comments pass the PHI guard and are stored redacted).")
    items: int = Field(40, ge=1, description="Items sampled into a new campaign (stratified by the evaluation's fairness slices) unless `review create --items` says otherwise.")
    seed: int = Field(0, description="Seed of the sample and of the blinded A/B order of a new campaign (recorded in the campaign).")
    registry: RegistrySettings = Field(default_factory=RegistrySettings, description="The model registry registry:* evaluation references resolve against and a closed campaign's summary is written to.")

    @model_validator(mode="before")
    @classmethod
    def _old_spellings(cls, data):
        return renamed_keys(data, {"registry_uri": "registry.tracking_uri", "model_name": "registry.model_name"}, "review config")

    def resolved_database_url(self) -> str:
        return database_url(self.database_url, self.workdir)


def database_url(url: str | None, workdir: str | Path) -> str:
    """``url`` as given, else the SQLite file ``<workdir>/review.db`` (its directory created)."""
    if url:
        return url
    db = Path(workdir).expanduser().resolve() / "review.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{db}"
