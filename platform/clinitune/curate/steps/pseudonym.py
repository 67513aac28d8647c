"""The ``pseudonymize_ids`` curation step: replace patient ids with keyed pseudonyms.

A patient id is usually a medical record number — one of the 18 Safe Harbor identifiers — so a
de-identified dataset must not carry it as given. Each value becomes ``<prefix><HMAC-SHA256(key,
column + NUL + value)>`` (first 20 hex digits): the same patient gets the same pseudonym in every
run and every file curated with the same key, so patient-level splits, grouping and evaluation
slices still work, while without the key the mapping cannot be recomputed by hashing every
possible record number. The key comes from the environment (``secret_key_env``, default
``CLINITUNE_DEID_KEY``, the key surrogate redaction uses) and is never written anywhere.

The pipeline runs it after ``patient_split`` (a patient's split stays a function of its source id,
so adding a key later does not move patients between splits).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

import pandas as pd
from pydantic import Field

from clinitune.config import StrictModel, validate_config
from clinitune.curate.steps.base import Step, register_step
from clinitune.errors import ConfigError
from clinitune.phi.engine import DEFAULT_KEY_ENV


class PseudonymizeOptions(StrictModel):
    """Options of the ``pseudonymize_ids`` step."""

    columns: list[str] = Field(default_factory=lambda: ["patient_id"], min_length=1, description="Id columns whose values are replaced by keyed pseudonyms.")
    secret_key_env: str = Field(DEFAULT_KEY_ENV, description="Environment variable holding the secret key (the same key gives the same pseudonyms).")
    prefix: str = Field("pt-", description="Prefix of every pseudonym, so pseudonymised ids are recognisable.")


def pseudonym(key: bytes, column: str, value: str, prefix: str = "pt-") -> str:
    digest = hmac.new(key, f"{column}\x00{value}".encode("utf-8"), hashlib.sha256).hexdigest()
    return prefix + digest[:20]


@register_step("pseudonymize_ids")
class PseudonymizeIds(Step):
    """Replace the values of id columns (``patient_id`` by default) of live rows with keyed pseudonyms."""

    requires = ("patient_id",)
    adds = ()

    def __init__(self, **options: Any):
        self.options = validate_config(options, PseudonymizeOptions, source="curation step 'pseudonymize_ids' options")
        self._key()  # fail at configuration time, not on the first batch

    def _key(self) -> bytes:
        key = os.environ.get(self.options.secret_key_env)
        if not key:
            raise ConfigError(f"pseudonymising patient ids needs a secret key: environment variable {self.options.secret_key_env} is not set"
                              " (on a cluster: in every worker's environment).",
                              fix=f"export {self.options.secret_key_env}=<a long random secret> (keep it: the same key gives the same pseudonyms; "
                                  "on a cluster pass it in the job's runtime_env env_vars), or set deid.pseudonymize_patient_ids: never.")
        return key.encode("utf-8")

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        key = self._key()
        alive = self.alive(batch)
        for column in self.options.columns:
            if column not in batch:
                raise ConfigError(f"curation step 'pseudonymize_ids': column '{column}' is not in the data.",
                                  fix="list only id columns the notes have (patient_id, note_type, ...).")
            values = batch[column].astype(object)
            mask = alive & values.notna()
            batch[column] = values.where(~mask, values[mask].map(lambda v: pseudonym(key, column, str(v), self.options.prefix)))
        return batch
