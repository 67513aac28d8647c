"""``clinitune rag ingest|list|search`` end to end (in-process CLI, real store and embedder)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from clinitune.cli.main import app


def test_ingest_list_search_and_errors(tmp_path):
    src = tmp_path / "docs"
    src.mkdir()
    (src / "formulary.jsonl").write_text(json.dumps({"id": "met", "text": "Metformin is first-line for type 2 diabetes."})
                                         + "\n{broken\n")
    (src / "policy.md").write_text("# Anticoagulation\n\nGive vitamin K when the INR is above 10.")
    runner = CliRunner()
    root = str(tmp_path / "kb")
    res = runner.invoke(app, ["rag", "ingest", "--kb", "local", "--root", root, str(src)])
    assert res.exit_code == 0, res.output
    assert "ingested 2 documents as 2 chunks into 'local'" in res.output
    assert "formulary.jsonl:2: not valid JSON" in res.output and "rejected 1 record(s)" in res.output
    res = runner.invoke(app, ["kb", "list", "--root", root])
    assert res.exit_code == 0 and "local\t2 chunks" in res.output
    res = runner.invoke(app, ["rag", "search", "--root", root, "--kb", "local", "--top-k", "1", "high INR"])
    assert res.exit_code == 0 and "policy.md#0" in res.output and "vitamin K" in res.output
    res = runner.invoke(app, ["kb", "search", "--root", root, "--kb", "missing", "x"])
    assert res.exit_code == 2 and "knowledge base 'missing' does not exist in '" in res.output and "(available: local)" in res.output
    res = runner.invoke(app, ["kb", "ingest", "--kb", "local", "--root", root, str(tmp_path / "nope.txt")])
    assert res.exit_code == 2 and "does not exist" in res.output
    res = runner.invoke(app, ["kb", "ingest", "--kb", "bad name!", "--root", root, str(src)])
    assert res.exit_code == 2 and "knowledge base name 'bad name!' is invalid" in res.output
