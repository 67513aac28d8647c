"""Campaigns from a real evaluation run: creation, bad evaluation references, append-only grades,
closed campaigns, concurrent grading, and closing into the report and MLflow."""

from __future__ import annotations

import json
import shutil
import threading

import pytest
from sqlalchemy import select, text

from clinitune.errors import UserError
from clinitune.review.campaigns import CampaignClosed, GradeInput, close_campaign, get_campaign, progress, record_grade
from clinitune.review.models import Grade, User

GOOD = GradeInput("correct", "partial", "A", [], [], "")


def test_campaign_from_an_evaluation_run(database, campaign_in, eval_copy):
    cid = campaign_in(n=12, seed=0)
    report = json.loads((eval_copy / "report.json").read_text())
    with database.session() as s:
        camp = get_campaign(s, cid)
        assert camp.status == "open" and len(camp.items) == 12 and camp.n_available == 30
        assert camp.report_path == str((eval_copy / "report.json").resolve())
        assert camp.answers_sha256 == report["answers"]["sha256"]
        assert camp.slice_keys == ["sex", "age_band", "note_type"] and camp.candidate_name == report["candidate"]["name"]
        assert all(it.messages and it.messages[-1]["role"] == "user" for it in camp.items)  # the prompt, not the reference turn
        assert progress(s, camp).total == 12 and progress(s, camp).graded == 0


def test_bad_evaluation_references_are_one_line_errors(database, eval_copy, tmp_path):
    from clinitune.review.source import resolve_eval

    def err(ref) -> str:
        with pytest.raises(UserError) as e:
            resolve_eval(str(ref), workdir=tmp_path)
        assert "\n" not in str(e.value) and "Fix:" in str(e.value)
        return str(e.value)

    assert "no evaluation report there" in err(tmp_path / "nowhere")
    old = tmp_path / "old"
    old.mkdir()
    rep = json.loads((eval_copy / "report.json").read_text())
    (old / "report.json").write_text(json.dumps({k: v for k, v in rep.items() if k != "answers"}))
    assert "has no stored answers" in err(old)
    gone = tmp_path / "gone"
    shutil.copytree(eval_copy, gone)
    (gone / "answers.jsonl").unlink()
    assert "answers.jsonl' is missing" in err(gone)
    (gone / "answers.jsonl").write_text((eval_copy / "answers.jsonl").read_text().replace("I10", "I11"))
    assert "does not match the report" in err(gone)
    assert "no version '99'" in err("registry:v99")
    assert "has no alias 'nightly'" in err("registry:nightly")
    assert "no arm 'candidate_rag'" in _arm_error(database, eval_copy)


def _arm_error(database, eval_copy) -> str:
    from clinitune.review.campaigns import create_campaign
    from clinitune.review.source import resolve_eval

    with pytest.raises(UserError) as e, database.session() as s:
        create_campaign(s, resolve_eval(str(eval_copy)), n=3, seed=0, name=None, created_by="t", candidate_arm="candidate_rag")
    return str(e.value)


def test_grades_are_append_only_and_the_latest_counts(database, accounts_in, campaign_in):
    from clinitune.review.campaigns import compute_summary, latest_grade

    ids = accounts_in()
    cid = campaign_in(n=4)
    with database.session() as s:
        camp, alice = get_campaign(s, cid), s.get(User, ids["alice"])
        item = camp.items[0]
        first = record_grade(s, camp, item, alice, GradeInput("incorrect", "incorrect", "B", [], [], ""), None, {})
        second = record_grade(s, camp, item, alice, GradeInput("correct", "incorrect", "A", [], [], ""), None, {})
        assert second > first and latest_grade(s, item, alice.id).id == second
        assert progress(s, camp, alice.id).mine == 1
        summary = compute_summary(s, camp)
        assert summary["grades_recorded"] == 2 and summary["judgements"] == 1
        assert summary["win_rate"]["rate"] == (1.0 if item.a_arm == "candidate" else 0.0)
    for sql in ("UPDATE grades SET grade_a = 'correct'", "DELETE FROM grades"):
        with pytest.raises(Exception, match="append-only"), database.session() as s:
            s.execute(text(sql))
    with database.session() as s:
        assert len(s.scalars(select(Grade)).all()) == 2


def test_a_closed_campaign_refuses_grades(database, accounts_in, campaign_in):
    ids = accounts_in()
    cid = campaign_in(n=4)
    with database.session() as s:
        camp = get_campaign(s, cid)
        record_grade(s, camp, camp.items[0], s.get(User, ids["alice"]), GOOD, None, {})
        close_campaign(s, camp, by="admin")
    with pytest.raises(CampaignClosed, match="is closed"), database.session() as s:
        camp = get_campaign(s, cid)
        record_grade(s, camp, camp.items[1], s.get(User, ids["alice"]), GOOD, None, {})
    with pytest.raises(CampaignClosed, match="already closed"), database.session() as s:
        close_campaign(s, get_campaign(s, cid), by="admin")
    with database.session() as s:
        assert len(s.scalars(select(Grade)).all()) == 1
        assert get_campaign(s, cid).summary["graded_items"] == 1


def test_two_reviewers_grading_the_same_item_at_once_both_are_kept(database, accounts_in, campaign_in):
    ids = accounts_in()
    cid = campaign_in(n=4)
    start = threading.Barrier(6)
    errors = []

    def grade(who: str, k: int) -> None:
        try:
            start.wait(timeout=10)
            with database.session() as s:
                camp = get_campaign(s, cid)
                record_grade(s, camp, camp.items[0], s.get(User, ids[who]),
                             GradeInput("correct", "correct", "tie", [], [], ""), f"{who} {k}", {})
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=grade, args=(who, k)) for who in ("alice", "bob", "admin") for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    with database.session() as s:
        rows = s.scalars(select(Grade)).all()
        assert len(rows) == 6 and {r.comment for r in rows} == {f"{w} {k}" for w in ("alice", "bob", "admin") for k in range(2)}
        assert progress(s, get_campaign(s, cid)).reviewers == 3


def test_closing_writes_the_summary_into_the_report_and_mlflow(database, accounts_in, campaign_in, eval_copy, tmp_path):
    from clinitune import tracking
    from clinitune.evaluate.report import read_report
    from clinitune.review.campaigns import Campaign
    from clinitune.review.publish import close_and_publish

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = tracking.start_run(uri, "clinitune-train", "candidate-run", artifact_root=tmp_path / "mlartifacts")
    ids = accounts_in()
    cid = campaign_in(n=5)
    with database.session() as s:
        camp = s.get(Campaign, cid)
        camp.mlflow_targets = [{"tracking_uri": uri, "run_id": run_id, "what": "training run"},
                               {"tracking_uri": uri, "run_id": "0" * 32, "what": "a run that does not exist"}]
        for it in camp.items:
            cand_label = "A" if it.a_arm == "candidate" else "B"
            record_grade(s, camp, it, s.get(User, ids["alice"]), GradeInput("correct", "correct", cand_label, [], [], ""), None, {})
    summary, done = close_and_publish(database, cid, by="admin")
    assert summary["win_rate"]["rate"] == 1.0 and summary["closed_by"] == "admin"
    rep = read_report(eval_copy)
    assert rep["human_review"]["campaign_id"] == cid and rep["human_review"]["status"] == "closed"
    assert rep["human_review"]["graded_items"] == 5
    html = (eval_copy / "report.html").read_text()
    assert "Clinician review" in html and "1.000" in html
    run = tracking.client(uri).get_run(run_id)
    assert run.data.metrics["review.win_rate"] == 1.0 and run.data.metrics["review.graded_items"] == 5
    assert run.data.tags["clinitune.review.campaign_id"] == str(cid)
    assert [a.path for a in tracking.client(uri).list_artifacts(run_id, "review")] == [f"review/campaign-{cid}.json"]
    assert done["mlflow"][0]["ok"] and not done["mlflow"][1]["ok"]  # a missing run is reported, the close stands
    # publishing again (the CLI on a closed campaign) repeats it without closing twice
    again, _ = close_and_publish(database, cid, by="admin")
    assert again["closed_at"] == summary["closed_at"]
    with database.session() as s:
        assert s.get(Campaign, cid).summary["published"]["report"]
