"""``clinitune phi detect|redact`` end to end through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clinitune.cli.main import main

NOTES = [
    {"note_id": "n1", "patient_id": "p1", "text": "Mr. Hargrove seen by Dr. Lindqvist on 7/22/2019.", "gold": "ignored"},
    {"note_id": "n2", "patient_id": "p1", "text": "Hargrove stable. Call 410-322-1419."},
    {"note_id": "n3", "text": "No identifiers here. BP 120/80."},
]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def notes(tmp_path) -> Path:
    return _write(tmp_path / "notes.jsonl", [json.dumps(n) for n in NOTES])


def test_detect_writes_offsets_per_note(notes, tmp_path, capsys):
    out = tmp_path / "pred.jsonl"
    assert main(["phi", "detect", "--input", str(notes), "--output", str(out)]) == 0
    preds = _read(out)
    assert [p["note_id"] for p in preds] == ["n1", "n2", "n3"]
    first = preds[0]["spans"]
    assert {"start", "end", "type", "score"} <= set(first[0])
    assert any(NOTES[0]["text"][s["start"]:s["end"]] == "Hargrove" and s["type"] == "NAME" for s in first)
    assert preds[2]["spans"] == []
    assert "Hargrove" not in capsys.readouterr().err


def test_redact_tag_and_audit(notes, tmp_path):
    out, audit = tmp_path / "red.jsonl", tmp_path / "audit.jsonl"
    assert main(["deid", "redact", "-i", str(notes), "-o", str(out), "--audit", str(audit)]) == 0
    rows = _read(out)
    assert "[NAME]" in rows[0]["text"] and "Hargrove" not in out.read_text()
    assert "gold" not in rows[0] and rows[2]["text"] == NOTES[2]["text"]
    audits = _read(audit)
    assert audits[0]["note_id"] == "n1" and audits[0]["counts"]["NAME"] >= 2
    assert "Hargrove" not in audit.read_text() and "7/22/2019" not in audit.read_text()


def test_redact_surrogate_needs_a_key(notes, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CLINITUNE_DEID_KEY", raising=False)
    out = tmp_path / "red.jsonl"
    assert main(["deid", "redact", "-i", str(notes), "-o", str(out), "--mode", "surrogate"]) == 2
    err = capsys.readouterr().err
    assert "CLINITUNE_DEID_KEY" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("CLINITUNE_DEID_KEY", "k")
    assert main(["deid", "redact", "-i", str(notes), "-o", str(out), "--mode", "surrogate"]) == 0
    rows = _read(out)
    assert "Hargrove" not in out.read_text()
    # consistent for the patient across notes n1 and n2
    s1 = rows[0]["text"].split()[1].rstrip(".")
    assert s1 in rows[1]["text"]


def test_bad_line_stops_with_its_line_number(notes, tmp_path, capsys):
    bad = _write(tmp_path / "bad.jsonl", [json.dumps(NOTES[0]), "{not json", json.dumps(NOTES[1])])
    out = tmp_path / "pred.jsonl"
    assert main(["deid", "detect", "-i", str(bad), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "--skip-bad" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_skip_bad_counts_rejects_without_text(tmp_path):
    lines = [json.dumps(NOTES[0]), "{not json", json.dumps({"note_id": "n9", "text": 7}), "[1, 2]",
             json.dumps({"text": "no id"}), json.dumps({"note_id": "bin", "text": "\x01" * 500}), json.dumps(NOTES[1])]
    src = _write(tmp_path / "mixed.jsonl", lines)
    src.write_bytes(src.read_bytes() + b'{"note_id": "latin", "text": "caf\xe9"}\n')
    out, rejects = tmp_path / "pred.jsonl", tmp_path / "rejects.jsonl"
    assert main(["deid", "detect", "-i", str(src), "-o", str(out), "--skip-bad", "--rejects", str(rejects)]) == 0
    assert [p["note_id"] for p in _read(out)] == ["n1", "n2"]
    rej = _read(rejects)
    assert [r["line"] for r in rej] == [2, 3, 4, 5, 6, 8]
    assert any(r["note_id"] == "bin" and "binary" in r["reason"] for r in rej)
    assert any("UTF-8" in r["reason"] for r in rej)
    assert "no id" not in rejects.read_text()


@pytest.mark.parametrize("args,fragment", [
    (["deid", "detect", "-i", "missing.jsonl", "-o", "x.jsonl"], "does not exist"),
    (["deid", "redact", "-i", "{notes}", "-o", "x.jsonl", "--mode", "blur"], "--mode"),
    (["deid", "detect", "-i", "{notes}", "-o", "{tmp}"], "is a directory"),
])
def test_user_errors_are_one_line(args, fragment, notes, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [a.format(notes=notes, tmp=tmp_path) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1
