"""Redaction modes: tags, masks, and surrogates consistent per patient with interval-keeping dates."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from clinitune.errors import UserError
from clinitune.phi import PhiConfig, PhiEngine

KEY = "test-key-not-a-secret"
NOTE_1 = "Mr. Hargrove seen by Dr. Lindqvist on 7/22/2019. Wife Helen called from Seattle. Call 410-322-1419."
NOTE_2 = "Mr. Hargrove stable. Dr. Lindqvist aware. Echo 8/05/2019. Helen at bedside. MRN: 7766554."
NO_PHI = "Pt resting comfortably. Lasix 40 mg IV given with good effect. BP 120/80, HR 88. Plan: continue to monitor."


@pytest.fixture(scope="module")
def engine() -> PhiEngine:
    return PhiEngine(PhiConfig(secret_key=KEY))


def test_tag_mode_replaces_with_kinds(engine):
    red = engine.redact(NOTE_1, mode="tag")
    assert "Hargrove" not in red.text and "410-322-1419" not in red.text and "7/22/2019" not in red.text
    assert "[NAME]" in red.text and "[DATE]" in red.text and "[PHONE]" in red.text
    assert red.counts["NAME"] >= 3 and red.counts["DATE"] == 1 and sum(red.counts.values()) == len(red.spans)


def test_tag_mode_is_idempotent(engine):
    once = engine.redact(NOTE_1 + "\n" + NOTE_2, mode="tag").text
    assert engine.redact(once, mode="tag").text == once


def test_mask_mode_keeps_length_and_layout(engine):
    red = engine.redact(NOTE_1, mode="mask")
    assert len(red.text) == len(NOTE_1)
    assert "Hargrove" not in red.text and "*********" in red.text
    assert [i for i, c in enumerate(NOTE_1) if c.isspace()] == [i for i, c in enumerate(red.text) if c.isspace()]


def test_text_without_phi_is_unchanged(engine):
    for mode in ("tag", "mask", "surrogate"):
        red = engine.redact(NO_PHI, mode=mode, patient_id="p1")
        assert red.text == NO_PHI and red.counts == {} and red.spans == []


def _surrogate_of(text: str, redacted: str, engine: PhiEngine, value: str) -> str:
    """The replacement written for ``value`` (the spans of the original text locate it)."""
    spans = engine.detect(text)
    out, shift = {}, 0
    for s in spans:
        orig = text[s.start:s.end]
        # rebuild offsets in the redacted text from the surrogate lengths
        start = s.start + shift
        rest = redacted[start:]
        nxt = text[s.end:(spans[spans.index(s) + 1].start if spans.index(s) + 1 < len(spans) else len(text))]
        end = start + (rest.index(nxt) if nxt else len(rest))
        out[orig] = redacted[start:end]
        shift += (end - start) - (s.end - s.start)
    return out[value]


def test_surrogates_are_consistent_for_one_patient_across_notes(engine):
    r1 = engine.redact(NOTE_1, mode="surrogate", patient_id="p1", note_id="n1")
    r2 = engine.redact(NOTE_2, mode="surrogate", patient_id="p1", note_id="n2")
    for value in ("Hargrove", "Lindqvist", "Helen"):
        s1 = _surrogate_of(NOTE_1, r1.text, engine, value)
        s2 = _surrogate_of(NOTE_2, r2.text, engine, value)
        assert s1 == s2 and s1 != value and s1[0].isupper()
    assert "Hargrove" not in r1.text + r2.text and "410-322-1419" not in r1.text


def test_surrogates_differ_between_patients_and_keys(engine):
    a = engine.redact(NOTE_1, mode="surrogate", patient_id="p1").text
    b = engine.redact(NOTE_1, mode="surrogate", patient_id="p2").text
    c = PhiEngine(PhiConfig(secret_key="another-key")).redact(NOTE_1, mode="surrogate", patient_id="p1").text
    assert a != b and a != c
    # reproducible with the same key
    assert PhiEngine(PhiConfig(secret_key=KEY)).redact(NOTE_1, mode="surrogate", patient_id="p1").text == a


def _dates(text: str) -> list[dt.date]:
    return [dt.date(int(y), int(m), int(d)) for m, d, y in re.findall(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b", text)]


def test_date_shift_keeps_intervals_and_formats(engine):
    note_a = "Admitted 7/22/2019. Extubated 7/25/2019. Follow-up 12/03/2019."
    note_b = "Seen again 01/15/2020 in clinic."
    ra = engine.redact(note_a, mode="surrogate", patient_id="p9").text
    rb = engine.redact(note_b, mode="surrogate", patient_id="p9").text
    orig = _dates(note_a + " " + note_b)
    new = _dates(ra + " " + rb)
    assert len(new) == 4 and new != orig
    assert [(b - a).days for a, b in zip(orig, orig[1:])] == [(b - a).days for a, b in zip(new, new[1:])]
    assert re.search(r"\b\d{2}/\d{2}/\d{4}\b", rb)  # zero-padded stays zero-padded
    shift = (orig[0] - new[0]).days
    assert 1 <= shift <= 365


def test_partial_dates_keep_their_shape(engine):
    text = "CATH 7/22. ECHO Nov 3. MI in '84. it's the 11th."
    red = engine.redact(text, mode="surrogate", patient_id="p3").text
    assert re.search(r"CATH \d{1,2}/\d{1,2}\.", red)
    assert re.search(r"ECHO [A-Z][a-z]{2} \d{1,2}\.", red)
    assert re.search(r"in '\d\d\.", red)
    assert re.search(r"the \d{1,2}(st|nd|rd|th)\.", red)


def test_zip_keeps_three_digits_unless_restricted(engine):
    red = engine.redact("Lives at 5 Oak Road, Austin, TX 78701. Old zip code: 03601.", mode="surrogate", patient_id="p1")
    assert "78700" in red.text and "00000" in red.text


def test_ages_over_89_are_aggregated(engine):
    assert engine.redact("98 yo gentleman s/p fall", mode="surrogate", patient_id="p1").text.startswith("90+ yo")


def test_surrogate_without_key_names_the_env_var(monkeypatch):
    monkeypatch.delenv("CLINITUNE_DEID_KEY", raising=False)
    with pytest.raises(UserError, match="CLINITUNE_DEID_KEY"):
        PhiEngine().redact(NOTE_1, mode="surrogate", patient_id="p1")
    monkeypatch.setenv("CLINITUNE_DEID_KEY", KEY)
    assert "Hargrove" not in PhiEngine().redact(NOTE_1, mode="surrogate", patient_id="p1").text


def test_unknown_mode_is_a_user_error(engine):
    with pytest.raises(UserError, match="mode"):
        engine.redact(NOTE_1, mode="blur")  # type: ignore[arg-type]


def test_audit_has_counts_and_no_values(engine):
    red = engine.redact(NOTE_1, mode="tag", note_id="n1")
    audit = red.audit()
    assert audit["note_id"] == "n1" and audit["total"] == len(red.spans) and audit["counts"] == red.counts
    flat = repr(audit)
    for value in ("Hargrove", "Lindqvist", "Helen", "Seattle", "410-322-1419", "7/22/2019"):
        assert value not in flat
