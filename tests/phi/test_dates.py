"""Dates in every machine and prose layout are covered whole — ISO 8601 and FHIR included — and
surrogate dates keep their layout (time and zone too)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from clinitune.phi import PhiConfig, PhiEngine
from clinitune.phi.surrogate import Surrogator

ENGINE = PhiEngine(PhiConfig(detector="rules"))

ISO_AND_FHIR = [
    "2021-05-18",
    "2021-05-08",
    "1999-12-31",
    "2021-5-8",
    "2021/05/18",
    "2021.05.18",
    "2021-05-18T09:30:00Z",
    "2021-05-18T09:30:00.123+00:00",
    "2021-05-18T09:30:00-05:00",
    "2021-05-18T09:30:00+0530",
    "2021-05-18T09:30",
    "2021-05-18 14:05",
    "2021-05-18 14:05:59",
    "20210518",
    "20210518T093000Z",
    "2021-05",  # a FHIR partial date (year and month)
]
OTHER_LAYOUTS = [
    "5/18", "05/18/2021", "5/18/21", "5-18-21", "18/05/2021", "31-12-2019", "18.05.2021", "May 18",
    "May 18th", "May 18, 2021", "18 May 2021", "18-May-2021", "Sept. 3rd", "3rd of May",
]


def _whole(text: str, value: str) -> bool:
    """Some detected DATE span covers every character of ``value`` in ``text``."""
    start = text.index(value)
    end = start + len(value)
    return any(s.start <= start and end <= s.end and s.type == "DATE" for s in ENGINE.detect(text))


@pytest.mark.parametrize("value", ISO_AND_FHIR)
@pytest.mark.parametrize("template", ["Seen on {}.", "{}", "DOB: {}\n", 'effectiveDateTime "{}",', "({})"])
def test_iso_and_fhir_dates_are_covered_whole(value, template):
    text = template.format(value)
    assert _whole(text, value), text


@pytest.mark.parametrize("value", ISO_AND_FHIR)
def test_tagging_leaves_no_digit_of_an_iso_date(value):
    red = ENGINE.redact(f"admitted {value} to ward", mode="tag").text
    assert red == "admitted [DATE] to ward"


def test_the_last_digit_of_the_day_is_not_left_behind():
    assert ENGINE.redact("2021-05-18", mode="tag").text == "[DATE]"
    assert ENGINE.redact("Seen on 2021-05-18.", mode="tag").text == "Seen on [DATE]."


@pytest.mark.parametrize("value", OTHER_LAYOUTS)
def test_other_layouts_are_covered_whole(value):
    assert _whole(f"Seen on {value} in clinic.", value)


@pytest.mark.parametrize("text", ["shift 1900-0700", "range 2010-2012 years", "lot 2021-05-18-7A", "v2021.05.18.3"])
def test_numbers_that_only_look_like_iso_dates_are_not_dates(text):
    assert not [s for s in ENGINE.detect(text) if s.type == "DATE"]


@pytest.mark.parametrize("value,pattern", [
    ("2021-05-18", r"\d{4}-\d{2}-\d{2}"),
    ("2021-05-18T09:30:00.123+00:00", r"\d{4}-\d{2}-\d{2}T09:30:00\.123\+00:00"),
    ("2021-05-18 14:05", r"\d{4}-\d{2}-\d{2} 14:05"),
    ("20210518T093000Z", r"\d{8}T093000Z"),
    ("2021-05", r"\d{4}-\d{2}"),
    ("18/05/2021", r"\d{2}/\d{2}/\d{4}"),
])
def test_surrogate_dates_keep_layout_time_and_zone(value, pattern):
    s = Surrogator(b"key", "patient:p1", max_shift_days=365)
    new = s.date(value)
    assert new != value and re.fullmatch(pattern, new), new


def test_surrogate_iso_dates_keep_intervals():
    s = Surrogator(b"key", "patient:p1", max_shift_days=365)
    a = dt.date.fromisoformat(s.date("2021-05-18T09:30:00Z")[:10])
    b = dt.date.fromisoformat(s.date("2021-06-01")[:10])
    assert (b - a).days == 14
