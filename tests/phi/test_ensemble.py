"""The ensemble's own logic, on tagger readings built in the test: typed spans and name growth."""

from __future__ import annotations

import numpy as np
import pytest

from clinitune.phi import PhiConfig, PhiEngine
from clinitune.phi.engine import _hide_tags
from clinitune.phi.ensemble import plausible
from clinitune.phi.lexicons import load
from clinitune.phi.tagger import Tagged
from clinitune.phi.tokens import tokenize

LEX = load()
RULES = PhiEngine(PhiConfig(detector="rules"))


def reading(text: str, hits: list[tuple[int, int, str, float]], names: dict[str, float] | None = None) -> Tagged:
    """A tagger reading of ``text``: one token per word, P(NAME) as given per word."""
    toks = tokenize(text)
    probs = np.array([(names or {}).get(t.text, 0.0) for t in toks], dtype=np.float32)
    return Tagged(hits, np.array([t.start for t in toks]), np.array([t.end for t in toks]), probs)


def ensemble(text: str, tagged: Tagged) -> list[tuple[str, str]]:
    return [(text[s.start:s.end], s.type) for s in RULES._finish(RULES._detect(_hide_tags(text), tagged))]


@pytest.mark.parametrize("kind,value,ok", [
    ("DATE", "3/12", True), ("DATE", "May 18th", True), ("DATE", "2021-05-18T09:30Z", True), ("DATE", "/", False),
    ("DATE", "12", False), ("AGE", "92", True), ("AGE", "45", False), ("PHONE", "4105", True), ("PHONE", "12", False),
    ("NAME", "Quenneville", True), ("NAME", "pt", False), ("NAME", "J.", True), ("LOCATION", "ICU", False),
    ("LOCATION", "Kernwood", True), ("MRN", "1234567", True), ("ID", "A1", False), ("ZIP", "02139", True),
    # an ICD-10-CM code in an answer is clinical content, not a date or an id (the guard kept eating it)
    ("DATE", "E11.9", False), ("ID", "S72.001A", False), ("MRN", "I10", False), ("DATE", "11.9", True),
    # two numbers are a date as a month and a day, or with a year; a blood pressure is not
    ("DATE", "118/72", False), ("DATE", "7/22", True), ("DATE", "22/7", True), ("DATE", "2019-07", True),
    # the label of an identifier field is not a name
    ("NAME", "MRN", False), ("NAME", "Acct", False), ("NAME", "Mrn.", False),
    # a shift and a blood gas are no dates; a drug, a relative or a credential is no name or place
    ("DATE", "1900-0700", False), ("DATE", "29/ 103", False), ("NAME", "VENTOLIN", False), ("LOCATION", "Phenergan", False),
    ("NAME", "GRANDAUGHTER", False), ("NAME", "Bacitracin Quenneville", True),
])
def test_tagger_spans_must_be_plausible_values_of_their_kind(kind, value, ok):
    assert plausible(kind, value, LEX) is ok


def test_a_model_name_grows_over_the_surname_the_tagger_half_believes():
    text = "Discussed plan with Vrenthal Oskarsdottir today."
    s = text.index("Vrenthal")
    tagged = reading(text, [(s, s + len("Vrenthal"), "NAME", 0.9)], {"Vrenthal": 0.9, "Oskarsdottir": 0.3})
    assert ("Vrenthal Oskarsdottir", "NAME") in ensemble(text, tagged)


def test_a_first_name_found_takes_its_surname_along():
    text = "Karena Jones is a 18 year-old female."
    tagged = reading(text, [(0, 6, "NAME", 0.8)])
    assert ensemble(text, tagged)[0] == ("Karena Jones", "NAME")


def test_name_growth_stops_at_ordinary_words():
    text = "Visited by Vrenthal yesterday evening."
    s = text.index("Vrenthal")
    found = ensemble(text, reading(text, [(s, s + 8, "NAME", 0.9)], {"Vrenthal": 0.9}))
    assert ("Vrenthal", "NAME") in found and not any("yesterday" in v for v, _ in found)


def test_implausible_tagger_spans_are_dropped_and_rule_spans_kept():
    text = "BP 120/80 at 2021-05-18, pt comfortable."
    slash = text.index("/")
    pt = text.index("pt ")
    tagged = reading(text, [(slash, slash + 1, "DATE", 0.9), (pt, pt + 2, "NAME", 0.9)])
    found = ensemble(text, tagged)
    assert found == [("2021-05-18", "DATE")]


def test_where_the_tagger_overlaps_a_rule_span_the_rules_reading_wins():
    # the tagger reads a place as a NAME and a ZIP as a PHONE, with the label's colon: the rules'
    # kinds and boundaries stay (a ZIP keeps its 3-digit rule, a place its surrogate kind)
    text = "Lives at 88 Oak Road, Austin, TX 78701. Mailing zip code: 02139-4307."
    a, z = text.index("Oak"), text.index(": 0")
    tagged = reading(text, [(a, a + len("Oak Road, Austin"), "NAME", 0.97), (z, z + len(": 02139-4307"), "PHONE", 0.99)])
    found = ensemble(text, tagged)
    assert ("78701", "ZIP") in found and ("02139-4307", "ZIP") in found
    assert not any(k in ("NAME", "PHONE") for _, k in found)


def test_tagger_spans_lose_edge_punctuation_and_function_words():
    text = "Sister called from Seattleton last night. Contact: Belvanne."
    s = text.index("from")
    b = text.index(": Belvanne")
    tagged = reading(text, [(s, s + len("from Seattleton"), "LOCATION", 0.8), (b, b + len(": Belvanne."), "NAME", 0.9)])
    found = ensemble(text, tagged)
    assert ("Seattleton", "LOCATION") in found
    assert [v for v, k in found if k == "NAME"][0].startswith("Belvanne")  # not ': Belvanne' 


def test_short_capitals_are_abbreviations_not_names_in_mixed_case_notes():
    text = "Moves all ext, 2/6 SEM at RUSB, seen by Dr. Lindqvist."
    r = text.index("RUSB")
    found = ensemble(text, reading(text, [(r, r + 4, "NAME", 0.84)]))
    assert not any(v == "RUSB" for v, _ in found)


def test_a_lowercase_word_is_no_name_where_casing_carries_information():
    text = "Son [NAME] called. Will wean vent as tolerated."
    w = text.index("wean")
    assert ensemble(text, reading(text, [(w, w + 4, "NAME", 0.41)])) == []
    lower = "son called. will wean vent as tolerated, bill at bedside."  # no casing to lean on: the tagger decides
    b = lower.index("bill")
    assert ("bill", "NAME") in ensemble(lower, reading(lower, [(b, b + 4, "NAME", 0.9)]))


def test_name_growth_needs_a_capital_where_casing_carries_information():
    text = "Mr. Vrenthal stable overnight, Karena Jones at bedside."
    s = text.index("Vrenthal")
    found = ensemble(text, reading(text, [(s, s + 8, "NAME", 0.96)], {"Vrenthal": 0.96, "stable": 0.6}))
    assert ("Vrenthal", "NAME") in found and not any("stable" in v for v, _ in found)
