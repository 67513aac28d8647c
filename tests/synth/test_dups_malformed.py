"""Planted exact/near duplicates and malformed records."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date

import pytest

from clinitune.synth.dups import shingle_jaccard
from clinitune.synth.generate import iter_notes, make_options, note_line
from clinitune.synth.malformed import MALFORMED_KINDS, OVERSIZE_CHARS


@pytest.fixture(scope="module")
def dup_notes() -> list[dict]:
    return list(iter_notes(1200, 5, dup_rate=0.08, near_dup_rate=0.06))


def test_duplicates_are_planted_at_the_requested_rates(dup_notes):
    kinds = Counter(r["dup_kind"] for r in dup_notes)
    assert 0.05 < kinds["exact"] / len(dup_notes) < 0.11
    assert 0.035 < kinds["near"] / len(dup_notes) < 0.085
    none = list(iter_notes(200, 5, dup_rate=0.0, near_dup_rate=0.0))
    assert all(r["dup_kind"] is None and r["dup_of"] is None for r in none)


def test_duplicates_copy_an_earlier_ordinary_note_of_the_same_patient(dup_notes):
    by_id = {r["note_id"]: r for r in dup_notes}
    for r in dup_notes:
        if r["dup_kind"] is None:
            assert r["dup_of"] is None
            continue
        original = by_id[r["dup_of"]]
        assert original["dup_kind"] is None and original["note_id"] < r["note_id"]
        for key in ("patient_id", "note_type", "note_date", "sex", "age"):
            assert r[key] == original[key]
        if r["dup_kind"] == "exact":
            assert r["text"] == original["text"] and r["phi"] == original["phi"] and r["icd10"] == original["icd10"]
        else:
            assert r["text"] != original["text"]
            assert shingle_jaccard(r["text"], original["text"]) >= 0.85
            assert r["icd10"] == original["icd10"]
            # spans moved with the edits and still hold the same values
            values = lambda rec: [(rec["text"][s["start"]:s["end"]], s["type"]) for s in rec["phi"]]  # noqa: E731
            assert values(r) == values(original)


def test_shingle_jaccard():
    a = "one two three four five six seven eight nine ten"
    assert shingle_jaccard(a, a) == 1.0
    assert shingle_jaccard(a, "completely different words in this other sentence here now") == 0.0
    assert 0 < shingle_jaccard(a, a.replace("six", "sxi")) < 1


def _malformed_lines(n: int = 160, rate: float = 0.35):
    opts = make_options(malformed_rate=rate)
    return [note_line(8, i, opts) for i in range(n)]


def test_every_malformed_kind_is_produced_and_really_malformed():
    lines = _malformed_lines()
    seen = Counter(kind for _, _, kind in lines if kind)
    assert set(seen) == set(MALFORMED_KINDS)
    for line, record, kind in lines:
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        if kind is None:
            parsed = json.loads(line)
            assert parsed == record and isinstance(parsed["text"], str) and parsed["text"].strip()
            continue
        assert record["phi"] == [] and record["icd10"] == []  # never a training example
        if kind == "invalid_utf8":
            with pytest.raises(UnicodeDecodeError):
                line.decode("utf-8")
            continue
        if kind == "broken_json":
            with pytest.raises(json.JSONDecodeError):
                json.loads(line)
            assert record["note_id"].encode() in line
            continue
        parsed = json.loads(line)
        assert parsed["note_id"] == record["note_id"]
        if kind == "text_not_string":
            assert not isinstance(parsed["text"], str)
        elif kind == "empty_text":
            assert parsed["text"].strip() == ""
        elif kind == "missing_patient_id":
            assert not parsed.get("patient_id")
        elif kind == "bad_date":
            with pytest.raises(ValueError):
                date.fromisoformat(parsed["note_date"])
        elif kind == "text_too_long":
            assert len(parsed["text"]) >= OVERSIZE_CHARS > 2 * 1024 * 1024


def test_no_malformed_records_by_default():
    opts = make_options()
    assert all(note_line(8, i, opts)[2] is None for i in range(100))
