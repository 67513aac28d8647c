"""Reading knowledge-base sources: text, markdown, JSONL with per-line rejection, the ICD-10-CM table."""

from __future__ import annotations

import json

import pytest

from clinitune.errors import InputPathError
from clinitune.rag.sources import icd10_documents, read_documents


def test_directory_of_text_markdown_and_jsonl(tmp_path):
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "anticoag.md").write_text("# Policy\n\nCheck INR.")
    (tmp_path / "notes.txt").write_text("Plain text.")
    (tmp_path / "_manifest.json").write_text("{}")  # metadata: skipped
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    lines = [json.dumps({"id": "f1", "text": "Metformin first line.", "title": "metformin"}),
             "{not json", json.dumps({"id": "f2"}), json.dumps(["a list"]), "",
             json.dumps({"text": "No id here."}), json.dumps({"id": "f3", "text": "x", "metadata": "bad"})]
    (tmp_path / "formulary.jsonl").write_text("\n".join(lines) + "\n")
    rejected = []
    docs = list(read_documents([tmp_path], rejected))
    by_id = {d.doc_id: d for d in docs}
    assert set(by_id) == {"policies/anticoag.md", "notes.txt", "f1", "formulary.jsonl:6"}
    assert by_id["policies/anticoag.md"].markdown and not by_id["notes.txt"].markdown
    assert by_id["f1"].title == "metformin"
    reasons = {r.where.rsplit("/", 1)[-1]: r.reason for r in rejected}
    assert reasons == {
        "formulary.jsonl:2": "not valid JSON",
        "formulary.jsonl:3": "missing or empty 'text' string",
        "formulary.jsonl:4": "not a JSON object",
        "formulary.jsonl:7": "'metadata' must be an object",
        "image.png": "unsupported file type '.png' (supported: .jsonl, .markdown, .md, .ndjson, .txt)",
    }
    assert not any("Metformin" in r.reason or "id here" in r.reason for r in rejected)  # never record text


def test_missing_or_unsupported_path_is_a_user_error(tmp_path):
    with pytest.raises(InputPathError, match="does not exist"):
        list(read_documents([tmp_path / "nope.txt"], []))
    (tmp_path / "table.csv").write_text("a,b\n")
    with pytest.raises(InputPathError, match="unsupported type '.csv'"):
        list(read_documents([tmp_path / "table.csv"], []))


def test_empty_and_undecodable_files_are_rejected(tmp_path):
    (tmp_path / "empty.txt").write_text("  \n")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    rejected = []
    assert list(read_documents([tmp_path], rejected)) == []
    assert sorted(r.reason for r in rejected) == ["empty file", "not UTF-8 text"]


def test_icd10_table_documents():
    docs = list(icd10_documents())
    assert len(docs) > 70_000
    e119 = next(d for d in docs if d.doc_id == "E11.9")
    # a short passage: code and name as its title, then the other ways notes write it
    assert e119.title == "E11.9 Type 2 diabetes mellitus without complications"
    assert e119.text.startswith("Also written: ") and "T2DM" in e119.text and len(e119.text) < 200
    assert e119.source == "icd10cm"
    assert len({d.doc_id for d in docs}) == len(docs)


def test_icd10_documents_can_be_scoped_to_categories():
    from clinitune.rag.sources import icd10_documents

    docs = list(icd10_documents(["i50", "J18"]))
    assert docs and {d.doc_id[:3] for d in docs} == {"I50", "J18"}
    assert all(d.title.startswith(d.doc_id + " ") for d in docs)
    assert "I50.9" not in {d.doc_id for d in icd10_documents(["I50"], exclude=["I50.9"])}
    assert len(docs) < 100 and list(icd10_documents([])) == []
