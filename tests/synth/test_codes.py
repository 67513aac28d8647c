"""The generation subset the note generator draws from, derived from the CMS table."""

from __future__ import annotations

from clinitune.synth.codes import ROLES, generation_codes, generation_subset
from clinitune.terminology.icd10 import ABBREVIATIONS, icd10_index, lookup


def test_generation_subset_is_derived_from_the_table():
    index = icd10_index()
    codes = generation_codes()
    assert 150 <= len(codes) <= 600
    for role in ROLES:
        subset = generation_subset(role)
        assert len(subset) >= 25
        for e in subset:
            assert index[e.code] == e  # names come from the table, never from this package
            assert "subsequent encounter" not in e.long_name and "sequela" not in e.long_name
    common = {e.code for e in codes}
    assert {"I10", "E11.9", "J44.1", "N39.0", "J18.9"} <= common
    assert any(c.startswith("N18.") for c in common)


def test_abbreviations_name_real_codes_in_the_subset():
    common = {e.code for e in generation_codes()}
    for code in ABBREVIATIONS:
        assert lookup(code) is not None, code
        assert code in common, code
