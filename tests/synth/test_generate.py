"""In-process generation: determinism, exact gold spans, PHI coverage, ICD-10 labels, patients."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date

import pytest

from clinitune.errors import UserError
from clinitune.phi.types import ALL_PHI_TYPES
from clinitune.synth.generate import NOTE_TYPES, generate_note, iter_notes
from clinitune.terminology.icd10 import icd10_index, mention_forms

N = 240
KEYS = ["note_id", "patient_id", "note_type", "note_date", "author", "sex", "age", "age_band", "text", "phi",
        "icd10", "dx_spans", "dup_of", "dup_kind"]


@pytest.fixture(scope="module")
def notes() -> list[dict]:
    return list(iter_notes(N, 1234))


def test_same_seed_same_notes_other_seed_other_notes(notes):
    assert [generate_note(1234, i) for i in (0, 7, 101, N - 1)] == [notes[i] for i in (0, 7, 101, N - 1)]
    assert list(iter_notes(30, 1234)) == notes[:30]
    other = list(iter_notes(30, 1235))
    assert all(a["text"] != b["text"] for a, b in zip(notes[:30], other))
    assert len({r["note_id"] for r in notes + other}) == len(notes) + len(other)


def test_record_fields(notes):
    bands = {"18-39": (18, 39), "40-64": (40, 64), "65-89": (65, 89), "90+": (90, 200)}
    for r in notes:
        assert list(r) == KEYS
        assert r["note_type"] in NOTE_TYPES and r["sex"] in ("F", "M")
        lo, hi = bands[r["age_band"]]
        assert lo <= r["age"] <= hi
        date.fromisoformat(r["note_date"])
        assert r["author"] and r["patient_id"]
    assert {r["note_type"] for r in notes} == set(NOTE_TYPES)
    assert {r["age_band"] for r in notes} == set(bands)


def test_every_span_is_exact_and_the_spans_do_not_overlap(notes):
    for r in notes:
        text, prev_end = r["text"], 0
        spans = sorted([(s["start"], s["end"]) for s in r["phi"]] + [(s["start"], s["end"]) for s in r["dx_spans"]])
        for start, end in spans:
            assert prev_end <= start < end <= len(text)
            assert text[start:end].strip() == text[start:end]  # no stray whitespace in a value
            prev_end = end
        for s in r["phi"]:
            assert s["type"] in ALL_PHI_TYPES and type(s["type"]) is str


def test_span_offsets_match_the_inserted_values():
    """Rebuild a note's segments and check each gold span against the value that was inserted."""
    from clinitune.synth.builder import assemble
    from clinitune.synth.generate import _base

    for i in range(40):
        record, segs = _base(99, i, 2500)
        inserted = [(s.text, s.phi) for s in segs if s.phi]
        asm = assemble(list(segs))
        assert asm.text == record["text"]
        assert [(record["text"][p["start"]:p["end"]], p["type"]) for p in record["phi"]] == inserted


def test_every_phi_kind_appears(notes):
    seen = {s["type"] for r in notes for s in r["phi"]}
    assert seen == set(ALL_PHI_TYPES)


def test_phi_formats_vary(notes):
    values = defaultdict(list)
    for r in notes:
        for s in r["phi"]:
            values[s["type"]].append(r["text"][s["start"]:s["end"]])
    dates, names, phones, years = values["DATE"], values["NAME"], values["PHONE"], values["YEAR"]
    patterns = {
        "7/22": r"^\d{1,2}/\d{1,2}$", "7/22/93": r"^\d{1,2}/\d{1,2}/\d{2}$", "11/03/2019": r"^\d{2}/\d{2}/\d{4}$",
        "2019-11-03": r"^\d{4}-\d{2}-\d{2}$", "Nov 3": r"^[A-Z][a-z]{2}\.? \d{1,2}$", "November 3, 2019": r"^[A-Z][a-z]+ \d{1,2}, \d{4}$",
        "03-Nov-2019": r"^\d{2}-[A-Z][a-z]{2}-\d{4}$", "11th": r"^\d{1,2}(st|nd|rd|th)$",
        "November 2019": r"^[A-Z][a-z]+ \d{4}$",
    }
    for example, pat in patterns.items():
        assert any(re.match(pat, d) for d in dates), example
    assert any(re.match(r"^'\d{2}$", y) for y in years) and any(re.match(r"^\d{4}s$", y) for y in years)
    assert any(re.match(r"^(19|20)\d{2}$", y) for y in years)
    assert any(n.isupper() and len(n) > 3 for n in names) and any(n.islower() for n in names)
    assert any(re.match(r"^[A-Z]\. ?[A-Z]", n) for n in names)  # initials / "J. Smith"
    assert any("(" in p for p in phones) and any("." in p for p in phones) and any("x" in p.lower() for p in phones)
    assert all(int(a) > 89 for a in values["AGE"])
    assert any(len(v) == 17 for v in values["VEHICLE"])  # a VIN


def test_ages_over_89_are_tagged(notes):
    for r in notes:
        if r["age"] > 89 and r["dup_kind"] is None:
            assert str(r["age"]) in [r["text"][s["start"]:s["end"]] for s in r["phi"] if s["type"] == "AGE"]


def test_icd10_labels_are_real_codes_mentioned_in_the_text(notes):
    index = icd10_index()
    for r in notes:
        assert r["icd10"], r["note_id"]
        assert r["icd10"] == sorted({s["code"] for s in r["dx_spans"]})
        for s in r["dx_spans"]:
            entry = index[s["code"]]
            mention = r["text"][s["start"]:s["end"]]
            assert mention.lower() in {f.lower() for f in mention_forms(entry)}, (s["code"], mention)
    forms_used = defaultdict(set)
    for r in notes:
        for s in r["dx_spans"]:
            e = index[s["code"]]
            m = r["text"][s["start"]:s["end"]]
            forms_used["long" if m == e.long_name else "short" if m == e.short_name else "other"].add(s["code"])
    assert all(forms_used[k] for k in ("long", "short", "other"))


def test_patients_are_consistent_across_their_notes(notes):
    by_patient = defaultdict(list)
    for r in notes:
        by_patient[r["patient_id"]].append(r)
    sizes = [len(v) for v in by_patient.values()]
    assert max(sizes) >= 4 and min(sizes) == 1
    for recs in by_patient.values():
        assert len({r["sex"] for r in recs}) == 1
        mrns = {re.sub(r"\D", "", r["text"][s["start"]:s["end"]]) for r in recs for s in r["phi"] if s["type"] == "MRN"}
        assert len(mrns) <= 1
        dated = sorted(recs, key=lambda r: r["note_date"])
        assert [r["age"] for r in dated] == sorted(r["age"] for r in dated)


def test_note_lengths(notes):
    for r in notes:
        limit = 1500 if r["note_type"] == "radiology_report" else 2500
        assert 300 <= len(r["text"]) <= limit, (r["note_type"], len(r["text"]))
    short = list(iter_notes(40, 1234, max_chars=1200))
    assert max(len(r["text"]) for r in short) < max(len(r["text"]) for r in notes[:40])


@pytest.mark.parametrize("opts", [{"dup_rate": 1.0}, {"near_dup_rate": -0.1}, {"malformed_rate": 0.5, "dup_rate": 0.45},
                                  {"max_chars": 100}])
def test_bad_options_are_user_errors(opts):
    with pytest.raises(UserError) as err:
        generate_note(1, 0, **opts)
    assert "\n" not in str(err.value) and "Fix:" in str(err.value)


def test_generation_is_fast():
    """The target is >= 500 notes/s per core; this only catches a gross regression (< 50/s)."""
    import time

    t = time.perf_counter()
    list(iter_notes(300, 77))
    assert time.perf_counter() - t < 6


def test_code_pool_narrows_the_label_space_deterministically():
    """--code-pool keeps chronic, acute and imaging diagnoses to that many codes per role; 0 is the full subset."""
    from clinitune.synth import iter_notes
    from clinitune.synth.patient import pool_for

    def codes(**opts):
        return [tuple(r["icd10"]) for r in iter_notes(150, 3, **opts) if isinstance(r.get("icd10"), list)]

    full, narrow = codes(), codes(code_pool=8)
    assert narrow == codes(code_pool=8)  # deterministic
    allowed = {e.code for role in ("chronic", "acute", "imaging") for sex in "FM" for e in pool_for(role, sex, 8)}
    assert len(allowed) <= 24
    seen = {c for note in narrow for c in note}
    assert seen <= allowed, f"codes outside the pool: {sorted(seen - allowed)}"
    assert len({c for note in full for c in note}) > len(seen)
    with pytest.raises(UserError, match="--code-pool"):
        list(iter_notes(1, 3, code_pool=3))
