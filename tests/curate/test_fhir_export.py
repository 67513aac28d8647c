"""FHIR exports as EHRs write them: notes in Binary resources, HTML/RTF, DiagnosticReport, charsets."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pandas as pd
import pytest

from clinitune.curate.readers import ReaderConfig, discover_inputs, plan_read_tasks, read_task
from clinitune.curate.readers import export
from clinitune.schema import (
    Q_EMPTY_TEXT, Q_EXTERNAL_CONTENT, Q_INVALID_ENCODING, Q_INVALID_FHIR, Q_MALFORMED, Q_UNREFERENCED_BINARY,
    Q_UNRESOLVED_REFERENCE, Q_UNSUPPORTED_CONTENT,
)

PLAIN = "HISTORY OF PRESENT ILLNESS\nCough for three days, no fever.\nPLAN\nRest and fluids."
HTML = ("<html><body><h2>Assessment</h2><p>Community acquired pneumonia.</p>"
        "<ul><li>Amoxicillin 500 mg</li><li>Follow up in 1 week</li></ul></body></html>")
RTF = r"{\rtf1\ansi\ansicpg1252{\fonttbl\f0 Arial;}\f0 Chief complaint:\par Knee pain after a fall.\par Caf\'e9 worker.\par}"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def binary(bid: str, data: bytes | None, ctype: str) -> dict:
    out = {"resourceType": "Binary", "id": bid, "contentType": ctype}
    if data is not None:
        out["data"] = b64(data)
    return out


def docref(did: str, patient: str, *attachments: dict, **extra) -> dict:
    return {
        "resourceType": "DocumentReference", "id": did, "status": "current",
        "subject": {"reference": f"Patient/{patient}"},
        "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
        "date": "2023-05-01T10:00:00Z",
        "author": [{"reference": "PractitionerRole/pr-7"}],
        "context": {"encounter": [{"reference": "Encounter/enc-3"}], "period": {"start": "2023-04-30T09:00:00Z"}},
        "content": [{"attachment": a} for a in attachments], **extra,
    }


def write_ndjson(path: Path, resources: list[dict | str]) -> None:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in resources) + "\n", encoding="utf-8")


def build_export(root: Path) -> dict[str, str]:
    """A Bulk Data export of a few resources; returns note id -> expected outcome (text snippet or reason)."""
    root.mkdir(parents=True, exist_ok=True)
    # Binary.ndjson sorts before DocumentReference.ndjson, Patient.ndjson after: order must not matter.
    write_ndjson(root / "Binary.ndjson", [
        binary("b-latin", "Résumé of visit: cough, no fever.".encode("latin-1"), "text/plain; charset=ISO-8859-1"),
        binary("b-html", HTML.encode(), "text/html; charset=utf-8"),
        binary("b-rtf", RTF.encode(), "text/rtf"),
        binary("b-abs", PLAIN.encode(), "text/plain"),
        binary("b-empty", None, "text/plain"),
        binary("b-shared", b"Shared discharge instructions: return if short of breath.", "text/plain"),
        binary("b-orphan", b"Nobody points at this text.", "text/plain"),
        binary("b-lying-ok", "Temp 38.5 \u00b0C, caf\u00e9.".encode("utf-8"), "text/plain; charset=us-ascii"),
        binary("b-lying-bad", "Temp 38.5 \u00b0C".encode("latin-1"), "text/plain; charset=utf-8"),
        binary("b-badhtml", b"<div><p>Wheezing improved<li>Albuterol PRN<td></table></b>", "text/html"),
        binary("b-badrtf", rb"{\rtf1 {\b Gout flare", "text/rtf"),
        '{"resourceType": "Binary", "id": ',  # malformed line
    ])
    write_ndjson(root / "DocumentReference.ndjson", [
        docref("d-latin", "p1", {"contentType": "text/plain", "url": "Binary/b-latin"}),
        docref("d-html", "p1", {"contentType": "text/html", "url": "Binary/b-html"}),
        docref("d-rtf", "p2", {"contentType": "text/rtf", "url": "Binary/b-rtf"}),
        docref("d-abs", "p2", {"contentType": "text/plain", "url": "https://ehr.example.org/fhir/R4/Binary/b-abs"}),
        docref("d-external", "p2", {"contentType": "text/plain", "url": "https://elsewhere.example.com/notes/123.txt"}),
        docref("d-unresolved", "p3", {"contentType": "text/plain", "url": "Binary/does-not-exist"}),
        docref("d-empty", "p3", {"contentType": "text/plain", "url": "Binary/b-empty"}),
        docref("d-shared-1", "p3", {"contentType": "text/plain", "url": "Binary/b-shared"}),
        docref("d-shared-2", "p4", {"contentType": "text/plain", "url": "Binary/b-shared"}),
        docref("d-multi", "p4",
               {"contentType": "application/pdf", "data": b64(b"%PDF-1.4")},
               {"contentType": "text/html", "data": b64(b"<p>HTML copy</p>")},
               {"contentType": "text/plain", "data": b64(b"Plain copy wins.")}),
        docref("d-lying-ok", "p4", {"contentType": "text/plain", "url": "Binary/b-lying-ok"}),
        docref("d-lying-bad", "p4", {"contentType": "text/plain", "url": "Binary/b-lying-bad"}),
        docref("d-badhtml", "p5", {"contentType": "text/html", "url": "Binary/b-badhtml"}),
        docref("d-badrtf", "p5", {"contentType": "text/rtf", "url": "Binary/b-badrtf"}),
        docref("d-contained", "p5", {"contentType": "text/plain", "url": "#inline"},
               contained=[binary("inline", b"Contained note: ankle sprain.", "text/plain")]),
        {**docref("d-invalid", "p5", {"contentType": "text/plain", "data": b64(b"x")}), "author": {"reference": "Practitioner/1"}},
    ])
    write_ndjson(root / "DiagnosticReport.ndjson", [{
        "resourceType": "DiagnosticReport", "id": "r-1", "status": "final",
        "code": {"text": "Chest X-ray report"}, "subject": {"reference": "Patient/p6"},
        "effectiveDateTime": "2023-06-02T08:00:00Z", "encounter": {"reference": "Encounter/enc-9"},
        "performer": [{"reference": "Practitioner/rad-1"}],
        "presentedForm": [{"contentType": "text/html", "data": b64(b"<p>Impression:</p><p>No acute infiltrate.</p>")}],
    }])
    write_ndjson(root / "Patient.ndjson", [{"resourceType": "Patient", "id": f"p{i}"} for i in range(1, 7)])
    return {
        "d-latin": "Résumé of visit", "d-html": "Community acquired pneumonia.\n", "d-rtf": "Knee pain after a fall.\nCafé",
        "d-abs": "Cough for three days", "d-external": Q_EXTERNAL_CONTENT, "d-unresolved": Q_UNRESOLVED_REFERENCE,
        "d-empty": Q_EMPTY_TEXT, "d-shared-1": "Shared discharge", "d-shared-2": "Shared discharge",
        "d-multi": "Plain copy wins.", "d-lying-ok": "café", "d-lying-bad": Q_INVALID_ENCODING,
        "d-badhtml": "Wheezing improved", "d-badrtf": "Gout flare", "d-contained": "ankle sprain",
        "d-invalid": Q_INVALID_FHIR, "r-1": "No acute infiltrate.",
    }


def read_export(root: Path) -> tuple[pd.DataFrame, list[str]]:
    cfg = ReaderConfig()
    files, skipped = discover_inputs([str(root)], cfg)
    ctx = export.ExportContext.build([f.path for f in files if f.format == "fhir_binary"],
                                     [f.path for f in files if f.format in ("ndjson", "json")])
    with export.use(ctx):
        frames = [read_task(t, cfg) for t in plan_read_tasks(files, cfg)]
    return pd.concat(frames, ignore_index=True), skipped


def test_export_notes_resolve_convert_and_quarantine_with_reasons(tmp_path):
    expected = build_export(tmp_path / "export")
    df, skipped = read_export(tmp_path / "export")
    assert any(s.endswith("Patient.ndjson") for s in skipped)  # carries no note: not records
    by_id = df.set_index("note_id")
    for note_id, want in expected.items():
        row = by_id.loc[note_id]
        if want.islower() and "_" in want:  # a quarantine reason
            assert (row.status, row.reason) == ("quarantined", want), note_id
            assert row.text is None
        else:
            assert row.status == "ok", (note_id, row.reason, row.detail)
            assert want in row.text, note_id
    # HTML keeps paragraphs and list items as lines; RTF paragraphs too.
    html_lines = [ln.strip() for ln in by_id.loc["d-html"].text.split("\n")]
    assert "* Amoxicillin 500 mg" in html_lines and "Community acquired pneumonia." in html_lines
    assert "\n" in by_id.loc["d-rtf"].text and "\\par" not in by_id.loc["d-rtf"].text
    assert "<" not in by_id.loc["d-badhtml"].text
    # Metadata: note type, dates, encounter, author role; subject gives the patient.
    d = by_id.loc["d-html"]
    assert (d.patient_id, d.note_type, d.note_date) == ("p1", "Progress note", "2023-04-30")
    attrs = json.loads(d.attributes)
    assert {k: attrs.get(k) for k in ("encounter", "author_role", "resource_type")} == {
        "encounter": "enc-3", "author_role": "PractitionerRole", "resource_type": "DocumentReference"}
    r = by_id.loc["r-1"]
    assert (r.patient_id, r.note_type, r.note_date) == ("p6", "Chest X-ray report", "2023-06-02")
    assert json.loads(r.attributes)["author_role"] == "Practitioner" and json.loads(r.attributes)["encounter"] == "enc-9"
    assert "'author'" in by_id.loc["d-invalid"].detail  # names the field that failed, not its value
    assert "elsewhere" not in (by_id.loc["d-external"].detail or "")
    # Binary lines: the orphan and the malformed one are records; referenced ones are parts of notes.
    binaries = df[df.source.str.endswith("Binary.ndjson")]
    assert sorted(binaries.reason) == sorted([Q_UNREFERENCED_BINARY, Q_MALFORMED])
    assert len(df) == len(expected) + 2


def test_file_order_does_not_matter(tmp_path):
    """The Binary file named after the notes, and the notes inside a Bundle, resolve the same."""
    root = tmp_path / "e"
    root.mkdir()
    write_ndjson(root / "DocumentReference.ndjson", [docref("d1", "p1", {"contentType": "text/plain", "url": "Binary/b1"})])
    write_ndjson(root / "zz_Binary.ndjson", [binary("b1", b"Late binary file.", "text/plain")])
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": docref("d2", "p2", {"contentType": "text/html", "url": "urn:uuid:2"})},
        {"fullUrl": "urn:uuid:2", "resource": binary("b2", b"<p>Bundle binary.</p>", "text/html")},
        {"fullUrl": "urn:uuid:3", "resource": binary("b3", b"unused", "text/plain")},
    ]}
    (root / "bundle.json").write_text(json.dumps(bundle))
    df, _ = read_export(root)
    by_id = df.set_index("note_id")
    assert by_id.loc["d1"].text == "Late binary file." and by_id.loc["d2"].text.strip() == "Bundle binary."
    assert sorted(df.reason.dropna()) == [Q_UNREFERENCED_BINARY]  # b3; b1 and b2 are parts of notes
    assert len(df) == 3


def test_unsupported_only_content_is_quarantined(tmp_path):
    root = tmp_path / "e"
    root.mkdir()
    write_ndjson(root / "DocumentReference.ndjson", [docref("d1", "p1", {"contentType": "application/pdf", "data": b64(b"%PDF")})])
    df, _ = read_export(root)
    assert df.reason.tolist() == [Q_UNSUPPORTED_CONTENT]


@pytest.mark.ray
def test_export_accounting_reconciles_through_the_pipeline(ray_session, tmp_path):
    from clinitune.curate.config import CurateConfig
    from clinitune.curate.pipeline import run_curation

    expected = build_export(tmp_path / "export")
    cfg = CurateConfig()
    cfg.boilerplate.min_notes = 5
    cfg.execution.batch_size = 8
    m = run_curation([str(tmp_path / "export")], tmp_path / "curated", cfg).manifest
    c = m["counts"]
    assert m["reconciles"] is True
    assert c["input"] == len(expected) + 2  # notes + the unreferenced and the malformed Binary lines
    total = sum(c["output"].values()) + sum(c["quarantined"].values()) + sum(c["filtered"].values()) + sum(c["duplicates"].values())
    assert total == c["input"]
    for reason in (Q_EXTERNAL_CONTENT, Q_UNRESOLVED_REFERENCE, Q_INVALID_ENCODING, Q_INVALID_FHIR, Q_UNREFERENCED_BINARY):
        assert c["quarantined"].get(reason, 0) >= 1, reason
    assert c["duplicates"]["exact"] == 1  # the Binary referenced twice
    assert any(s.endswith("Patient.ndjson") for s in m["skipped_files"])
