"""The CMS ICD-10-CM table every stage shares: loading, lookup, mention forms."""

from __future__ import annotations

from clinitune.terminology.icd10 import Icd10Entry, load_icd10_table, lookup, mention_forms, normalize_code, trimmed_name


def test_table_holds_every_billable_code_with_names():
    table = load_icd10_table()
    assert len(table) > 70_000
    assert all(isinstance(e, Icd10Entry) and e.long_name and e.short_name for e in table[:1000])
    assert lookup("I10").long_name == "Essential (primary) hypertension"
    assert lookup("e119") == lookup("E11.9")
    assert lookup("N18.3") is None  # a header code, not billable
    assert load_icd10_table() is not load_icd10_table()  # callers get their own list of the cached rows


def test_normalize_code():
    assert normalize_code(" j441 ") == "J44.1"
    assert normalize_code("I10") == "I10"
    assert normalize_code("S72.001A") == "S72.001A"


def test_mention_forms():
    htn = lookup("I10")
    forms = mention_forms(htn)
    assert forms[0] == htn.long_name and htn.short_name in forms and "HTN" in forms
    assert trimmed_name("Pneumonia, unspecified organism") == "Pneumonia"
    assert trimmed_name("Obstructive sleep apnea (adult) (pediatric)") == "Obstructive sleep apnea"
    assert trimmed_name("Unspecified atrial fibrillation") == "Atrial fibrillation"
