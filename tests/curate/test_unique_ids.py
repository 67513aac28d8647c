"""Repeated note ids: the record at the first location stays, later ones are quarantined."""

from __future__ import annotations

import pyarrow as pa

from clinitune.curate.unique_ids import _quarantine, location_key, repeated_ids


def test_locations_order_by_file_then_line_number():
    locs = ["b.jsonl:2", "a.jsonl:10", "a.jsonl:9", "a.csv:3", "bundle.json#12", "bundle.json#2"]
    assert sorted(locs, key=location_key) == ["a.csv:3", "a.jsonl:9", "a.jsonl:10", "b.jsonl:2", "bundle.json#2", "bundle.json#12"]


def test_repeated_ids_names_every_later_record_and_where_the_kept_one_is():
    block = pa.table({"note_id": ["n1", "n2", "n1", "n3", "n1"],
                      "location": ["x.jsonl:10", "x.jsonl:3", "x.jsonl:9", "x.jsonl:4", "y.csv:2"]})
    out = repeated_ids(block).to_pylist()
    assert sorted((r["note_id"], r["location"], r["_repeat_of"]) for r in out) == [
        ("n1", "x.jsonl:10", "x.jsonl:9"), ("n1", "y.csv:2", "x.jsonl:9")]
    assert repeated_ids(pa.table({"note_id": ["a", "b"], "location": ["f:1", "f:2"]})).num_rows == 0


def test_quarantine_sets_status_reason_and_a_detail_without_text():
    batch = pa.table({"note_id": ["n1", "n1"], "location": ["f:1", "f:2"], "text": ["secret a", "secret b"],
                      "status": ["ok", "ok"], "reason": pa.array([None, None], pa.string()),
                      "detail": pa.array([None, None], pa.string()), "_repeat_of": [None, "f:1"]})
    out = _quarantine(batch).to_pylist()
    assert [r["status"] for r in out] == ["ok", "quarantined"]
    assert out[1]["reason"] == "duplicate_note_id" and "f:1" in out[1]["detail"] and "secret" not in out[1]["detail"]
    assert "_repeat_of" not in out[0]
