"""Forgetting probes: the built-in set and each kind of check."""

from __future__ import annotations

import pytest

from clinitune.errors import ConfigError
from clinitune.evaluate.probes import family_accuracy, load_probes, probe_families, score_probe


def test_built_in_families_and_caps():
    assert probe_families() == ["arithmetic", "format", "knowledge"]
    probes = load_probes()
    assert len(probes) >= 60 and len({p["id"] for p in probes}) == len(probes)
    capped = load_probes(["arithmetic"], max_per_family=3)
    assert [p["family"] for p in capped] == ["arithmetic"] * 3


def test_unknown_family_is_a_config_error():
    with pytest.raises(ConfigError, match="probes.families"):
        load_probes(["poetry"])


def test_checks():
    number = {"check": "number", "answer": "42", "family": "arithmetic"}
    assert score_probe(number, "The answer is 42.") and not score_probe(number, "41 or 42")
    contains = {"check": "contains", "answer": ["Paris"], "family": "knowledge"}
    assert score_probe(contains, "It is Paris, France.") and not score_probe(contains, "Parisian food")
    regex = {"check": "regex", "answer": r"\W*ok\W*", "flags": "i", "family": "format"}
    assert score_probe(regex, "OK.") and not score_probe(regex, "OK, sure thing")
    js = {"check": "json", "answer": {"color": "blue"}, "family": "format"}
    assert score_probe(js, 'Here: {"color": "blue"}') and not score_probe(js, '{"color": "red"}')


def test_every_built_in_probe_accepts_its_own_answer():
    """Guards the data file: each probe's expected answer passes its own check."""
    import json

    for p in load_probes():
        if p["check"] == "number":
            answer = p["answer"]
        elif p["check"] == "contains":
            answer = p["answer"][0]
        elif p["check"] == "json":
            answer = json.dumps(p["answer"])
        else:
            continue  # regexes are exercised above
        assert score_probe(p, answer), p["id"]


def test_family_accuracy():
    probes = load_probes(["arithmetic"], max_per_family=2)
    acc = family_accuracy([(probes[0], probes[0]["answer"]), (probes[1], "no idea")])
    assert acc["arithmetic"] == {"n": 2, "correct": 1, "accuracy": 0.5}
