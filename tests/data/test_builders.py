"""Task builders: curated rows -> chat examples, every row accounted for, never note text in ids."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from clinitune.data.builders import build_builder
from clinitune.terminology.icd10 import format_codes, normalize_code, parse_codes
from clinitune.errors import ConfigError


def _notes(*rows):
    return pd.DataFrame([{"note_id": n, "text": t, "attributes": a} for n, t, a in rows])


def test_icd10_builder_targets_are_canonical_code_lists():
    b = build_builder("icd10_coding", {"max_note_chars": 100}, system_prompt="You code notes.")
    out = b(_notes(
        ("n1", "Hypertension and diabetes.", json.dumps({"icd10": ["e119", "I10", "E11.9"]})),
        ("n2", "No diagnoses here.", json.dumps({"icd10": []})),
        ("n3", "   ", json.dumps({"icd10": ["I10"]})),
        ("n4", "Codes as a string.", json.dumps({"icd10": "J44.9; I10"})),
    ))
    assert list(out["example_id"]) == ["n1", "n2", "n3", "n4"]
    assert list(out["status"]) == ["ok", "no_label", "empty_text", "ok"]
    m1 = json.loads(out["messages"][0])
    assert [m["role"] for m in m1] == ["system", "user", "assistant"]
    assert m1[2]["content"] == "E11.9, I10"
    assert "Hypertension and diabetes." in m1[1]["content"] and "ICD-10-CM" in m1[1]["content"]
    assert json.loads(out["messages"][3])[2]["content"] == "I10, J44.9"


def test_icd10_builder_truncates_long_notes_at_a_word():
    b = build_builder("icd10_coding", {"max_note_chars": 60})
    text = "word " * 100
    user = json.loads(b(_notes(("n", text, '{"icd10": ["I10"]}')))["messages"][0])[0]["content"]
    note = user.split("Note:\n", 1)[1]
    assert len(note) <= 64 and note.endswith(" ...") and "wor ..." not in note


def test_icd10_builder_with_names_uses_the_cms_table():
    b = build_builder("icd10_coding", {"include_names": True})
    answer = json.loads(b(_notes(("n", "text", '{"icd10": ["I10"]}')))["messages"][0])[-1]["content"]
    assert answer.startswith("I10 ") and "hypertension" in answer.lower()


def test_code_helpers_round_trip():
    assert normalize_code(" e119 ") == "E11.9" and normalize_code("I10") == "I10"
    assert format_codes(["I10", "e11.9", "I10", ""]) == "E11.9, I10"
    assert parse_codes("Codes: E11.9, I10 and j44.9.") == ["E11.9", "I10", "J44.9"]
    assert parse_codes(format_codes(["Z79.4", "N18.30"])) == ["N18.30", "Z79.4"]


def test_instructions_builder_accepts_messages_and_prompt_response():
    b = build_builder("instructions", {})
    msgs = [{"role": "user", "content": "Summarise."}, {"role": "assistant", "content": "Stable."}]
    out = b(pd.DataFrame({"id": ["a", "b", "c"],
                          "messages": [json.dumps(msgs), json.dumps([{"role": "user", "content": "no answer"}]), msgs]}))
    assert list(out["status"]) == ["ok", "bad_messages", "ok"]
    assert list(out["example_id"]) == ["a", "b", "c"]
    pr = b(pd.DataFrame({"prompt": ["Q?", ""], "response": ["A.", "x"]}))
    assert list(pr["status"]) == ["ok", "bad_messages"]
    assert pr["example_id"][0].startswith("ex-") and "Q?" not in pr["example_id"][0]


def test_builder_errors_name_the_fix():
    with pytest.raises(ConfigError, match="unknown task 'summarize'"):
        build_builder("summarize", {})
    with pytest.raises(ConfigError, match="bad option"):
        build_builder("icd10_coding", {"max_chars": 10})
    with pytest.raises(ConfigError, match="lacks the columns"):
        build_builder("icd10_coding", {}).check_columns(["note_id", "text"], "/data/x")


def test_icd10_name_code_answers_put_each_name_before_its_code():
    """answer_format name_code: one 'diagnosis (code)' line per code, codes still parse back exactly."""
    import json

    import pandas as pd

    from clinitune.data.builders import build_builder
    from clinitune.terminology.icd10 import parse_codes

    b = build_builder("icd10_coding", {"answer_format": "name_code"})
    df = pd.DataFrame({"note_id": ["n1"], "text": ["Pt with HTN and T2DM."], "attributes": [json.dumps({"icd10": ["I10", "E11.9"]})]})
    messages = json.loads(b(df)["messages"][0])
    answer = messages[-1]["content"]
    assert answer.splitlines() == ["Type 2 diabetes mellitus without complications (E11.9)", "Essential (primary) hypertension (I10)"]
    assert parse_codes(answer) == ["E11.9", "I10"]
    assert "diagnosis (code)" in messages[0]["content"]
    from clinitune.errors import ConfigError

    with pytest.raises(ConfigError, match="data.task.options: answer_format must be one of codes, code_name, name_code"):
        build_builder("icd10_coding", {"answer_format": "names"})
