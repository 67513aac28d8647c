"""How input files are read: column mapping, presets, limits and chunking (``reader:`` in YAML)."""

from __future__ import annotations

import codecs
import re
from typing import Literal

from pydantic import Field, field_validator

from clinitune.config import StrictModel

# The canonical fields a source record is mapped to (``source`` is always the input path).
MAPPABLE_FIELDS = ("note_id", "patient_id", "text", "note_type", "note_date")

# Column names of MIMIC-III NOTEEVENTS (also matched case-insensitively: some builds lower-case them).
MIMIC_PRESET: dict[str, str] = {
    "note_id": "ROW_ID",
    "patient_id": "SUBJECT_ID",
    "text": "TEXT",
    "note_type": "CATEGORY",
    "note_date": "CHARTDATE",
}
PRESETS: dict[str, dict[str, str]] = {"none": {}, "mimic": MIMIC_PRESET}


class ReaderConfig(StrictModel):
    """Input formats, column mapping and validation limits for the curation readers."""

    preset: Literal["none", "mimic"] = Field(
        "none",
        description="Column-mapping preset: 'none' (fields named as in the canonical schema) or 'mimic' "
        "(MIMIC NOTEEVENTS: ROW_ID, SUBJECT_ID, TEXT, CATEGORY, CHARTDATE).",
    )
    column_mapping: dict[str, str] = Field(
        default_factory=dict,
        description="Canonical field -> source field/column name (keys: note_id, patient_id, text, note_type, "
        "note_date); merged over the preset. Applies to JSONL, CSV and Parquet.",
    )
    passthrough_fields: list[str] = Field(
        default_factory=lambda: ["icd10", "sex", "age_band"],
        description="Source fields copied, when present, into the 'attributes' JSON object (labels and slice "
        "attributes; never PHI).",
    )
    txt_patient_pattern: str = Field(
        r"(?P<patient_id>[^/\\]+)[/\\][^/\\]+\.(?i:txt)$",
        description="Regex searched in each .txt file's absolute path; its named group 'patient_id' gives the "
        "patient id (default: the name of the file's directory).",
    )
    encoding: str = Field(
        "utf-8",
        description="Text encoding of JSONL, NDJSON, JSON, CSV and TXT inputs (line formats need an "
        "ASCII-compatible encoding); bytes invalid in it quarantine the record as invalid_encoding.",
    )
    max_text_chars: int = Field(
        200_000, ge=1, description="Notes longer than this many characters are quarantined as text_too_long."
    )
    chunk_bytes: int = Field(
        32 * 1024 * 1024,
        ge=1,
        description="JSONL/NDJSON files are read as independent tasks of about this many bytes (line-aligned).",
    )
    csv_delimiter: str = Field(",", description="CSV field delimiter (one character, e.g. ',' or '\\t').")
    follow_symlinks: bool = Field(
        False, description="Follow symbolic links found inside input directories (links named directly are always read)."
    )

    @field_validator("column_mapping")
    @classmethod
    def _check_mapping(cls, value: dict[str, str]) -> dict[str, str]:
        for key, src in value.items():
            if key not in MAPPABLE_FIELDS:
                raise ValueError(f"unknown canonical field '{key}'; use one of {', '.join(MAPPABLE_FIELDS)}")
            if not isinstance(src, str) or not src.strip():
                raise ValueError(f"source name for '{key}' must be a non-empty string")
        return value

    @field_validator("passthrough_fields")
    @classmethod
    def _check_passthrough(cls, value: list[str]) -> list[str]:
        if any(not f.strip() for f in value):
            raise ValueError("passthrough field names must be non-empty")
        return list(dict.fromkeys(value))

    @field_validator("txt_patient_pattern")
    @classmethod
    def _check_pattern(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as err:
            raise ValueError(f"not a valid regular expression ({err})") from None
        if "patient_id" not in compiled.groupindex:
            raise ValueError("the pattern needs a named group (?P<patient_id>...)")
        return value

    @field_validator("encoding")
    @classmethod
    def _check_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown text encoding '{value}'; use a Python codec name such as utf-8 or latin-1") from None
        return value

    @field_validator("csv_delimiter")
    @classmethod
    def _check_delimiter(cls, value: str) -> str:
        if len(value) != 1 or value in "\r\n\"":
            raise ValueError("must be exactly one character other than a quote or a newline")
        return value

    def decoding(self) -> str:
        """The codec for whole files: UTF-8 also drops a leading byte-order mark."""
        return "utf-8-sig" if codecs.lookup(self.encoding).name == "utf-8" else self.encoding

    def resolved_mapping(self) -> dict[str, str]:
        """Canonical field -> source name: identity, then the preset, then ``column_mapping``."""
        mapping = {f: f for f in MAPPABLE_FIELDS}
        mapping.update(PRESETS[self.preset])
        mapping.update(self.column_mapping)
        return mapping
