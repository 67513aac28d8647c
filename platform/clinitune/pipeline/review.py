"""The pipeline's ``review`` stage: clinician sign-off before the gate, when the policy asks for it.

With ``human_review.enabled`` in the gate policy, the stage makes (once) a review campaign from the
run's evaluation in the review database, and while the campaign is open raises
:class:`AwaitingReview`: the tick ends with status ``awaiting_review`` (exit 0), the run stays
current, and each later tick checks again. Once an admin has closed the campaign, the stage makes
sure its summary is in the report (closing writes it; a crash in between could lose it) and the
gate decides with it. With the rule off the stage does nothing.
"""

from __future__ import annotations

from pathlib import Path


class AwaitingReview(Exception):
    """Not a failure: the run waits for a clinician review campaign to close."""

    def __init__(self, campaign_id: int, message: str, output: dict):
        super().__init__(message)
        self.campaign_id, self.message, self.output = campaign_id, message, output


def review_stage(cfg, run_id: str, report: str | Path, policy, prior: dict) -> dict:
    """The stage's output when the run may go on to the gate; raises AwaitingReview while it may not."""
    rule = policy.human_review
    if not rule.enabled:
        return {"required": False}
    from clinitune.evaluate.report import read_report
    from clinitune.evaluate.review_gate import review_summary
    from clinitune.review.campaigns import create_campaign, find_campaign_for_report, get_campaign, progress
    from clinitune.review.config import database_url
    from clinitune.review.db import Database
    from clinitune.review.models import CLOSED
    from clinitune.review.publish import write_to_report
    from clinitune.review.source import resolve_eval

    report = Path(report).resolve()
    database = Database(database_url(cfg.review.database_url, cfg.workdir))
    try:
        with database.session() as s:
            camp = get_campaign(s, prior["campaign_id"]) if prior.get("campaign_id") else find_campaign_for_report(s, str(report))
            if camp is None:
                source = resolve_eval(str(report.parent))
                camp = create_campaign(s, source, n=cfg.review.items, seed=cfg.review.seed, name=f"pipeline run {run_id}",
                                       created_by="pipeline")
            cid, status, summary, prog = camp.id, camp.status, dict(camp.summary or {}), progress(s, camp)
    finally:
        database.dispose()
    if status != CLOSED:
        msg = (f"awaiting clinician review: campaign {cid} is open ({prog.graded}/{prog.total} items graded by "
               f"{prog.reviewers} reviewer(s)); grade it in `clinitune review serve`, then an admin closes it "
               f"(there or with `clinitune review close {cid}`) and the next tick decides")
        raise AwaitingReview(cid, msg, {"campaign_id": cid, "graded": prog.graded, "items": prog.total})
    summary.pop("published", None)
    current = review_summary(read_report(report))
    if current is None or current.get("campaign_id") != cid:
        write_to_report(report, summary)
    wr = summary.get("win_rate") or {}
    return {"required": True, "campaign_id": cid, "graded_items": summary.get("graded_items"),
            "reviewers": summary.get("reviewers"), "win_rate": wr.get("rate")}
