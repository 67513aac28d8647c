"""A mixed input directory holding every supported format, valid and malformed records."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

NOTE = (
    "DISCHARGE SUMMARY\nPatient {name} was seen on {date} for chest pain.\n"
    "Assessment: hypertension, type 2 diabetes mellitus without complications.\n"
    "Plan: continue lisinopril 10 mg daily, metformin 500 mg twice daily. Follow up in clinic {n}.\n"
    "Vitals stable. Ambulating without assistance. Tolerating a regular diet.\n"
)
NAMES = ["John Smith", "Maria Garcia", "Wei Chen", "Aisha Khan", "Olga Petrova", "Kwame Mensah"]


def note_text(i: int) -> str:
    # Distinct words per note keep unrelated notes far apart for near-dup detection.
    extra = " ".join(f"token{i}x{j}" for j in range(12))
    return NOTE.format(name=NAMES[i % len(NAMES)], date=f"3/{(i % 27) + 1}/2021", n=i) + extra + "\n"


def docref(i: int, patient: str, data: str | None = None, content_type: str = "text/plain") -> dict:
    return {
        "resourceType": "DocumentReference",
        "id": f"fhir-{i}",
        "status": "current",
        "subject": {"reference": f"Patient/{patient}"},
        "date": "2021-03-04T10:00:00Z",
        "type": {"text": "Progress note"},
        "content": [{"attachment": {"contentType": content_type, "data": data if data is not None else base64.b64encode(note_text(i).encode()).decode()}}],
    }


@dataclass
class MixedCorpus:
    root: Path
    n_records: int = 0  # physical input records (what counts.input must equal)
    n_valid: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def bad(self, reason: str) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        self.n_records += 1

    def good(self, k: int = 1) -> None:
        self.n_valid += k
        self.n_records += k


def build_mixed_corpus(root: Path) -> MixedCorpus:
    c = MixedCorpus(root)
    root.mkdir(parents=True, exist_ok=True)
    i = 0
    # JSONL: 20 valid, one exact duplicate, then one of each malformed kind.
    lines = []
    for _ in range(20):
        lines.append(json.dumps({"note_id": f"j{i}", "patient_id": f"p{i % 7}", "text": note_text(i), "note_type": "discharge", "note_date": "2021-03-04", "icd10": ["I10"]}))
        c.good(); i += 1
    lines.append(json.dumps({"note_id": "j-dup", "patient_id": "p1", "text": note_text(0)})); c.good()
    # Another note under an id already used on line 2: the later record is quarantined.
    lines.append(json.dumps({"note_id": "j1", "patient_id": "p4", "text": note_text(97)})); c.bad("duplicate_note_id")
    lines.append('{"note_id": "broken", "text": '); c.bad("malformed_record")
    lines.append(json.dumps({"note_id": "num", "patient_id": "p1", "text": 12345})); c.bad("wrong_type")
    lines.append(json.dumps({"note_id": "empty", "patient_id": "p1", "text": "   \n "})); c.bad("empty_text")
    lines.append(json.dumps({"note_id": "nopat", "text": note_text(99)})); c.bad("missing_patient_id")
    lines.append(json.dumps({"note_id": "baddate", "patient_id": "p1", "text": note_text(98), "note_date": "not a date"})); c.bad("unparseable_date")
    lines.append(json.dumps({"note_id": "huge", "patient_id": "p1", "text": "x " * 150_000})); c.bad("text_too_long")
    body = ("\n".join(lines) + "\n").encode()
    body += b'{"note_id": "badutf", "patient_id": "p1", "text": "caf\xe9 \xff\xfe"}\n'; c.bad("invalid_encoding")
    (root / "a").mkdir()
    (root / "a" / "notes.jsonl").write_bytes(body)

    # CSV (MIMIC-like column names mapped by default names here): 8 valid, 1 empty text.
    rows = [{"note_id": f"c{k}", "patient_id": f"q{k % 3}", "text": note_text(i + k), "note_type": "nursing", "note_date": "03/05/2021"} for k in range(8)]
    i += 8
    rows.append({"note_id": "c-empty", "patient_id": "q1", "text": "", "note_type": "nursing", "note_date": "03/05/2021"})
    pd.DataFrame(rows).to_csv(root / "a" / "notes.csv", index=False)
    c.good(8); c.bad("empty_text")

    # Parquet: 6 valid.
    pd.DataFrame([{"note_id": f"pq{k}", "patient_id": f"r{k % 2}", "text": note_text(i + k), "note_type": "radiology", "note_date": "2021-03-06"} for k in range(6)]).to_parquet(root / "notes.parquet")
    i += 6
    c.good(6)

    # FHIR bulk NDJSON: 5 valid, 1 bad base64, 1 malformed line.
    nd = [json.dumps(docref(i + k, f"f{k % 2}")) for k in range(5)]
    i += 5
    nd.append(json.dumps(docref(500, "f1", data="***not base64***")))
    nd.append("{not json")
    (root / "b").mkdir()
    (root / "b" / "DocumentReference.ndjson").write_text("\n".join(nd) + "\n")
    c.good(5); c.bad("bad_base64"); c.bad("malformed_record")

    # FHIR Bundle: 3 valid entries.
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": docref(i + k, "g1")} for k in range(3)]}
    i += 3
    (root / "b" / "bundle.json").write_text(json.dumps(bundle))
    c.good(3)

    # Plain text, patient id from the directory name: 2 valid.
    for k in range(2):
        d = root / "txt" / f"t{k}"
        d.mkdir(parents=True)
        (d / f"note{k}.txt").write_text(note_text(i + k))
    i += 2
    c.good(2)

    # Unsupported file: listed as skipped, not an input record.
    (root / "README.pdf").write_bytes(b"%PDF-1.4")
    return c


@pytest.fixture
def mixed_corpus(tmp_path: Path) -> MixedCorpus:
    return build_mixed_corpus(tmp_path / "in")
