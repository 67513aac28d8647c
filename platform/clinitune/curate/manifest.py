"""The curation manifest (exact accounting, lineage) and the human-readable dataset card."""

from __future__ import annotations

import hashlib
import json
import platform as _pyplatform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from clinitune.schema import SPLITS

FORMAT_VERSION = 1
_VERSIONED = ("clinitune", "ray", "pyarrow", "pandas", "ftfy", "datasketch", "spacy", "pydantic")


def library_versions() -> dict[str, str]:
    out = {"python": _pyplatform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def parquet_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.parquet") if p.is_file())


def count_rows(directory: Path) -> int:
    """Rows in every Parquet file under ``directory``, from file metadata only."""
    return sum(pq.ParquetFile(p).metadata.num_rows for p in parquet_files(directory))


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def dataset_hash(root: Path, subdirs: tuple[str, ...] = SPLITS) -> str:
    """Content hash of the published splits: what training records as lineage."""
    h = hashlib.sha256()
    for sub in subdirs:
        for p in parquet_files(root / sub):
            h.update(str(p.relative_to(root)).encode())
            h.update(file_sha256(p).encode())
    return h.hexdigest()


def reconcile(counts: dict[str, Any]) -> bool:
    """input = sum(output) + quarantined + filtered + duplicates, exactly."""
    total = (
        sum(counts["output"].values())
        + sum(counts["quarantined"].values())
        + sum(counts["filtered"].values())
        + sum(counts["duplicates"].values())
    )
    return total == counts["input"]


def build_manifest(**fields: Any) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
        **fields,
    }


def manifest_text(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _table(rows: dict[str, int]) -> str:
    if not rows:
        return "| (none) | 0 |\n"
    return "".join(f"| {k} | {v:,} |\n" for k, v in sorted(rows.items()))


def dataset_card(m: dict[str, Any]) -> str:
    c = m["counts"]
    deid = m.get("deid", {})
    deid_line = (
        f"De-identified with the Clinitune PHI engine in `{deid.get('mode')}` mode."
        if deid.get("enabled")
        else "**WARNING: de-identification was disabled for this run. This data may contain PHI.**"
    )
    if deid.get("patient_ids") == "pseudonymized":
        deid_line += " Patient ids are keyed pseudonyms (HMAC-SHA256 with the deployment's secret key)."
    elif deid.get("patient_ids") == "as given":
        deid_line += (" **Patient ids are as given in the input** (often record numbers, which are PHI): set"
                      " CLINITUNE_DEID_KEY (or deid.pseudonymize_patient_ids: always) to replace them with keyed pseudonyms.")
    phi_rows = deid.get("phi_counts", {})
    bp = m.get("boilerplate", {})
    return f"""# Dataset card: curated clinical notes

Produced by `clinitune curate` (run `{m['run_id']}`, {m['created_at']}).

## Privacy
{deid_line} Quarantine and dropped-record files hold ids, source locations and reason codes only,
never note text. PHI spans removed, by kind (counts only):

| PHI kind | spans |
|---|---|
{_table(phi_rows)}
## Boilerplate
Non-clinical template blocks repeated across many patients' notes were removed from
{bp.get('notes_changed', 0):,} note(s) ({bp.get('line_keys', 0):,} template line(s) found); a line with clinical
content (section header, drug, diagnosis, negated finding, statement about the patient,
measurement) is never removed. Lines removed, by kind (counts only):

| boilerplate kind | lines |
|---|---|
{_table(bp.get('lines_removed', {}))}
## Accounting (reconciles: {m['reconciles']})
Input records: **{c['input']:,}** from {len(m['inputs'])} file(s)
({len(m.get('skipped_files', []))} file(s) with unsupported extensions skipped, listed in the manifest).

| output split | notes |
|---|---|
{_table(c['output'])}
| quarantined (reason) | records |
|---|---|
{_table(c['quarantined'])}
| filtered (filter) | notes |
|---|---|
{_table(c['filtered'])}
| duplicates | notes |
|---|---|
{_table(c['duplicates'])}
input = output + quarantined + filtered + duplicates.

## Splits
Patient-level and deterministic (salted hash of the patient id): no patient appears in two splits.
Ratios: {m['config']['split']}.

## Lineage
- config hash: `{m['config_hash']}`
- dataset hash (published splits): `{m['dataset_hash']}`
- library versions: {', '.join(f'{k} {v}' for k, v in sorted(m['versions'].items()))}
"""
