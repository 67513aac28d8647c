"""``clinitune review``: accounts, create, list, close, export, and one-line errors (exit 2)."""

from __future__ import annotations

import csv
import json

from typer.testing import CliRunner

from clinitune.cli.main import app


def _run(*args, input: str | None = None):
    return CliRunner().invoke(app, ["review", *map(str, args)], input=input)


def test_the_review_commands_end_to_end(eval_copy, tmp_path):
    db = f"sqlite:///{tmp_path / 'review.db'}"
    common = ["--db", db, "--workdir", tmp_path]
    r = _run("users", "add", "Boss", "--role", "admin", "--password-stdin", *common, input="boss-passphrase-1\n")
    assert r.exit_code == 0 and "added admin 'boss'" in r.output
    r = _run("users", "add", "ann", "--password-stdin", *common, input="short\n")
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "too short" in r.output
    r = _run("users", "add", "ann", "--password-stdin", *common, input="ann-passphrase-12\n")
    assert r.exit_code == 0
    r = _run("users", "list", *common)
    assert "ann\treviewer\tactive" in r.output and "boss\tadmin\tactive" in r.output

    r = _run("create", "--eval", eval_copy, "--items", 7, "--seed", 3, "--name", "pilot", *common)
    assert r.exit_code == 0, r.output
    assert r.output.startswith("campaign 1 'pilot': 7 items of 30 (stratified by sex, age_band, note_type; seed 3)")
    r = _run("list", *common)
    assert r.exit_code == 0 and "pilot" in r.output and "0/7" in r.output

    from clinitune.review.campaigns import GradeInput, get_campaign, record_grade
    from clinitune.review.db import Database
    from clinitune.review.models import User

    database = Database(db)
    with database.session() as s:
        camp = get_campaign(s, 1)
        ann = s.query(User).filter_by(username="ann").one()
        for it in camp.items[:2]:
            record_grade(s, camp, it, ann, GradeInput("correct", "partial", "tie", [], ["other"], ""), "looks fine", {})
    database.dispose()

    r = _run("close", 1, *common)
    assert r.exit_code == 0, r.output
    assert "campaign 1 closed: 2/7 items graded by 1 reviewer(s); win rate 0.500" in r.output
    assert "unsafe flags on the candidate: none" in r.output or "other x1" in r.output
    assert json.loads((eval_copy / "report.json").read_text())["human_review"]["campaign_id"] == 1
    r = _run("close", 1, *common)
    assert r.exit_code == 0 and "already closed; summary published again" in r.output

    out = tmp_path / "grades.csv"
    r = _run("export", 1, "--format", "csv", "--output", out, *common)
    assert r.exit_code == 0 and len(list(csv.DictReader(out.open()))) == 2
    r = _run("export", 1, "--format", "json", *common)
    assert r.exit_code == 0 and json.loads(r.stdout)["summary"]["graded_items"] == 2


def test_one_line_errors(eval_dir, tmp_path):
    db = f"sqlite:///{tmp_path / 'review.db'}"
    for args in (["create", "--eval", tmp_path / "nowhere", "--db", db],
                 ["create", "--eval", eval_dir, "--candidate-arm", "candidate_rag", "--db", db],
                 ["close", 42, "--db", db],
                 ["export", 1, "--format", "xml", "--db", db],
                 ["users", "deactivate", "ghost", "--db", db],
                 ["list", "--db", "notadb://x"]):
        r = _run(*args)
        assert r.exit_code == 2, (args, r.output)
        assert r.output.startswith("error: ") and r.output.count("\n") == 1 and "Traceback" not in r.output, r.output
