"""Names: a surname after a found first name, names known only from their context, names with a
number glued on (Synthea) — redacted whole by the rules, which every detector mode runs."""

from __future__ import annotations

import pytest

from clinitune.phi import PhiConfig, PhiEngine

RULES = PhiEngine(PhiConfig(detector="rules"))

WHOLE = [
    # a first name found means its surname is found
    ("Karena Jones is a 18 year-old female.", "Karena Jones"),
    ("Met with daughter Hope Smith at bedside.", "Hope Smith"),
    ("SPOKE WITH SON EDWIN PRZYBYLO BY PHONE.", "EDWIN PRZYBYLO"),
    # names known only from context (in no lexicon)
    ("Patient John Smith was seen.", "John Smith"),
    ("Patient Zorblatt Quenneville was seen today.", "Zorblatt Quenneville"),
    ("PATIENT ZORBLATT QUENNEVILLE WAS SEEN TODAY.", "ZORBLATT QUENNEVILLE"),
    ("Zorblatt Quenneville is a 46 year-old man with CHF.", "Zorblatt Quenneville"),
    ("Seen by Dr. Vrenthal Oskarsdottir this am.", "Vrenthal Oskarsdottir"),
    # Synthea writes names with a number glued on
    ("Abe604 Nader710 is a 46 year-old non-hispanic white male.", "Abe604 Nader710"),
]


@pytest.mark.parametrize("text,name", WHOLE)
def test_names_are_redacted_whole(text, name):
    red = RULES.redact(text, mode="tag").text
    for word in name.split():
        assert word not in red, (text, red)
    assert "[NAME]" in red


@pytest.mark.parametrize("text", [
    "Patient Education: reviewed. Patient Care plan updated.",
    "Patient Controlled Analgesia started at 0800.",
    "The patient is a 60 year-old man.",
    "Patient has hope for recovery and will mark progress daily.",
    "pt restles overnite, medicated x1.",
])
def test_context_cues_do_not_make_names_of_ordinary_words(text):
    assert not [s for s in RULES.detect(text) if s.type == "NAME"]
