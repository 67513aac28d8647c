"""Documentation task builders: dialogue -> note section (MTS-Dialog) and dialogue -> full note
(ACI-bench), read from CSV sources with quoted multi-line fields."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from clinitune.data.builders import build_builder, registered_builders
from clinitune.data.sources import columns_of, count_rows, read_frame, split_files

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def mts_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "ID": [0, 1, 2, 3],
        "section_header": ["FAM/SOCHX", "ALLERGY", "GENHX", "MEDICATIONS"],
        "section_text": ["Nonsmoker.", "No known drug allergies.", "", "Lisinopril."],
        "dialogue": ["Doctor: Do you smoke?\nPatient: No.", "Doctor: Any allergies?\nPatient: None.", "Doctor: Hi.",
                     "Doctor: " + "x" * 3000],
    })


def test_note_section_uses_the_header_as_instruction_and_accounts_for_every_row():
    assert {"note_section", "full_note"} <= set(registered_builders())
    out = build_builder("note_section", {}, "You write notes.")(mts_frame())
    assert list(out["status"]) == ["ok", "ok", "no_label", "too_long"]
    assert list(out["example_id"]) == ["0", "1", "2", "3"]
    msgs = json.loads(out["messages"][0])
    assert [m["role"] for m in msgs] == ["system", "user", "assistant"]
    assert msgs[1]["content"].startswith("Write the FAMILY AND SOCIAL HISTORY section of the clinical note")
    assert "Patient: No." in msgs[1]["content"] and msgs[2]["content"] == "Nonsmoker."
    other = build_builder("note_section", {"instruction": "Summarise as {section}."})(mts_frame().head(1))
    assert json.loads(other["messages"][0])[0]["content"].startswith("Summarise as FAMILY AND SOCIAL HISTORY.")


def test_full_note_builder():
    df = pd.DataFrame({"encounter_id": ["D2N001"], "dialogue": ["[doctor] hi . [patient] hello ."], "note": ["CHIEF COMPLAINT\n\nCough."]})
    out = build_builder("full_note")(df)
    assert list(out["status"]) == ["ok"] and out["example_id"][0] == "D2N001"
    assert json.loads(out["messages"][0])[-1]["content"] == "CHIEF COMPLAINT\n\nCough."
    with pytest.raises(Exception, match="max_dialogue_chars"):
        build_builder("full_note", {"max_dialogue_chars": 3})


def test_csv_sources_with_multiline_fields_and_a_valid_split(tmp_path):
    mts_frame().to_csv(tmp_path / "train.csv", index=False)
    mts_frame().head(2).to_csv(tmp_path / "valid.csv", index=False)
    files, fmt = split_files(tmp_path, "train")
    assert fmt == "csv" and count_rows(files, fmt) == 4  # four rows, more lines
    assert columns_of(files, fmt) == ["ID", "section_header", "section_text", "dialogue"]
    vfiles, vfmt = split_files(tmp_path, "validation")
    assert vfiles == [tmp_path / "valid.csv"]
    assert read_frame(vfiles, vfmt)["dialogue"][0] == "Doctor: Do you smoke?\nPatient: No."


@pytest.mark.skipif(not (SHARED / "mts-dialog").is_dir(), reason="shared MTS-Dialog data not present")
def test_real_mts_dialog_and_aci_bench_build():
    files, fmt = split_files(SHARED / "mts-dialog", "validation")
    df = read_frame(files, fmt)
    assert len(df) == count_rows(files, fmt) == 100
    out = build_builder("note_section")(df)
    assert (out["status"] == "ok").sum() >= 95
    files, fmt = split_files(SHARED / "aci-bench", "train")
    out = build_builder("full_note")(read_frame(files, fmt))
    assert len(out) == 67 and (out["status"] == "ok").all()
