"""Canonical record schemas shared by every stage.

Every reader maps its format to ``CANONICAL_COLUMNS``. Rows carry a ``status`` through the
pipeline: ``ok`` while alive, else the terminal state that the manifest counts. Nothing is ever
dropped silently: a row leaves only by being written to a split, to the quarantine, or by being
counted as filtered or duplicate.
"""

from __future__ import annotations

import pyarrow as pa

# The one schema all inputs map to.
CANONICAL_COLUMNS = ["note_id", "patient_id", "text", "note_type", "note_date", "source"]

# Extra per-note fields carried through curation as a JSON object string (labels such as
# ``icd10`` codes, and slice attributes such as ``sex`` and ``age_band``). Never PHI.
ATTRIBUTES_COLUMN = "attributes"

# Pipeline bookkeeping columns.
STATUS_COLUMN = "status"  # ok | quarantined | filtered | duplicate
REASON_COLUMN = "reason"  # reason code for quarantined/filtered/duplicate rows, else null
LOCATION_COLUMN = "location"  # "file:line" / "file:row" / "file#entry" of the source record
DETAIL_COLUMN = "detail"  # short human-readable detail, never note text

STATUS_OK = "ok"
STATUS_QUARANTINED = "quarantined"
STATUS_FILTERED = "filtered"
STATUS_DUPLICATE = "duplicate"

SPLITS = ("train", "validation", "test")

# Quarantine reason codes (validation).
Q_MALFORMED = "malformed_record"  # line/row cannot be parsed (bad JSON, bad CSV row, bad FHIR)
Q_WRONG_TYPE = "wrong_type"  # a field has the wrong type (e.g. text is a number)
Q_EMPTY_TEXT = "empty_text"  # text missing, empty or whitespace only
Q_INVALID_ENCODING = "invalid_encoding"  # bytes are not valid in the declared encoding
Q_TEXT_TOO_LONG = "text_too_long"  # text over the configured size limit
Q_MISSING_PATIENT = "missing_patient_id"
Q_BAD_DATE = "unparseable_date"
Q_BAD_BASE64 = "bad_base64"  # FHIR attachment data is not valid base64
Q_MISSING_NOTE_ID = "missing_note_id"
Q_DUPLICATE_NOTE_ID = "duplicate_note_id"
Q_UNSUPPORTED_CONTENT = "unsupported_content"  # e.g. FHIR attachment that is not text/plain
Q_DEID_FAILED = "deid_failed"
Q_INVALID_FHIR = "invalid_fhir"  # a FHIR resource fails R4 structure validation (detail names the field)
Q_UNRESOLVED_REFERENCE = "unresolved_reference"  # attachment.url names no Binary of the export
Q_EXTERNAL_CONTENT = "external_content"  # attachment.url points outside the export (never fetched)
Q_UNREFERENCED_BINARY = "unreferenced_binary"  # a Binary of the export that no note points at

QUARANTINE_REASONS = (
    Q_MALFORMED, Q_WRONG_TYPE, Q_EMPTY_TEXT, Q_INVALID_ENCODING, Q_TEXT_TOO_LONG,
    Q_MISSING_PATIENT, Q_BAD_DATE, Q_BAD_BASE64, Q_MISSING_NOTE_ID, Q_DUPLICATE_NOTE_ID,
    Q_UNSUPPORTED_CONTENT, Q_DEID_FAILED, Q_INVALID_FHIR, Q_UNRESOLVED_REFERENCE, Q_EXTERNAL_CONTENT,
    Q_UNREFERENCED_BINARY,
)

# Arrow schema of the rows readers emit (before cleaning adds score columns).
RECORD_SCHEMA = pa.schema(
    [
        ("note_id", pa.string()),
        ("patient_id", pa.string()),
        ("text", pa.string()),
        ("note_type", pa.string()),
        ("note_date", pa.string()),  # ISO-8601 date (YYYY-MM-DD) or null
        ("source", pa.string()),  # input file path
        (ATTRIBUTES_COLUMN, pa.string()),  # JSON object string, "{}" when none
        (STATUS_COLUMN, pa.string()),
        (REASON_COLUMN, pa.string()),
        (LOCATION_COLUMN, pa.string()),
        (DETAIL_COLUMN, pa.string()),
    ]
)
