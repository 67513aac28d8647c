"""Every held-out item's full answers, persisted beside the report (``answers.jsonl``).

The report keeps only short samples; clinician review (``clinitune review create``) needs every
item: the prompt the models were asked (de-identified held-out input), the reference, each arm's
full answer and the item's fairness-slice values. One JSON object per example::

    {"example_id": "...", "slices": {"sex": "F", ...}, "messages": [{"role": "system", ...},
     {"role": "user", ...}], "reference": "...", "answers": {"candidate": "...", "baseline": "...",
     "candidate_rag": "..."}}

The report names the file in its ``answers`` section (format, arms, count, SHA-256, where the
inputs came from). Inputs are the curated held-out split's text, de-identified by curation; when
the dataset's manifest says de-identification was off, inputs are withheld (``messages`` is null)
so the file never carries identified text. The file holds note text: it is never logged, and it
lives with the curated data it came from.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from clinitune.artifacts import curated
from clinitune.artifacts.publish import publish_whole
from clinitune.errors import UserError

ANSWERS_FILE = "answers.jsonl"
FORMAT = "clinitune.eval_answers/1"


def inputs_status(data_dir: str | Path) -> str:
    """``deidentified`` / ``not_deidentified`` / ``unknown`` from the curated dataset's manifest."""
    try:
        man = curated.read_manifest(data_dir)
    except UserError:
        return "unknown"
    deid = man.get("deid")
    if not isinstance(deid, dict) or "enabled" not in deid:
        return "unknown"
    return "deidentified" if deid["enabled"] else "not_deidentified"


def answer_records(examples, arms: dict[str, dict[str, str]], slice_keys: list[str], *, with_inputs: bool) -> list[dict]:
    """One record per held-out example (``examples`` is the eval set's frame; ``arms`` maps arm -> example id -> answer)."""
    records = []
    for row in examples.to_dict("records"):
        ex_id = str(row["example_id"])
        messages = json.loads(row["messages"])[:-1] if with_inputs else None  # the prompt, without the reference turn
        records.append({
            "example_id": ex_id,
            "slices": {k: str(row.get(f"slice.{k}", "unknown")) for k in slice_keys},
            "messages": messages,
            "reference": str(row["reference"]),
            "answers": {arm: str(answers.get(ex_id, "")) for arm, answers in arms.items()},
        })
    return records


def write_answers(out_dir: str | Path, records: list[dict], *, task: str, slice_keys: list[str], inputs: str) -> dict:
    """Write ``answers.jsonl`` into ``out_dir`` (whole or not at all); returns the report's ``answers`` section."""
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    with publish_whole(Path(out_dir) / ANSWERS_FILE, file=True) as staging:
        staging.write_bytes(body)
    arms = sorted({a for r in records for a in r["answers"]})
    return {"file": ANSWERS_FILE, "format": FORMAT, "n": len(records), "arms": arms, "task": task,
            "slice_keys": list(slice_keys), "inputs": inputs, "sha256": hashlib.sha256(body).hexdigest()}


def read_answers(report_dir: str | Path, section: dict | None) -> list[dict]:
    """The records of the answers file next to a report (a one-line UserError when there are none)."""
    d = Path(report_dir)
    if not section or not section.get("file"):
        raise UserError(f"evaluation '{d}' has no stored answers (it was run before every item's answers were kept).",
                        fix="re-run `clinitune evaluate` on this candidate; it writes answers.jsonl next to report.json.")
    path = d / Path(section["file"]).name
    if not path.is_file():
        raise UserError(f"evaluation '{d}' has no stored answers: '{path.name}' is missing.",
                        fix="re-run `clinitune evaluate` on this candidate, or copy its answers.jsonl back next to report.json.")
    raw = path.read_bytes()
    if section.get("sha256") and hashlib.sha256(raw).hexdigest() != section["sha256"]:
        raise UserError(f"evaluation '{d}': '{path.name}' does not match the report (SHA-256 differs).",
                        fix="use the answers.jsonl written by the same `clinitune evaluate` run as report.json.")
    records = []
    for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise UserError(f"evaluation '{d}': {path.name} line {n} is not valid JSON.",
                            fix="re-run `clinitune evaluate` to rewrite it.") from None
        records.append(rec)
    return records
