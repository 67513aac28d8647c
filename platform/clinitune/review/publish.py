"""A closed campaign's results into the loop: the evaluation report and the candidate's MLflow runs.

* ``report.json`` gains a ``human_review`` section (the summary; the gate's ``human_review`` rule
  reads it) and ``report.html`` a "Clinician review" section; both rewritten whole.
* Each MLflow run the campaign knows (the candidate's training run; the registered version's run
  when it was made from the registry) gets ``review.*`` metrics, ``clinitune.review.*`` tags and
  the summary as ``review/campaign-<id>.json``.

A run or report that cannot be written is reported (by error type), never undoes the close;
publishing again (``clinitune review close`` on a closed campaign) repeats it.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def review_metrics(summary: dict) -> dict[str, float]:
    """Flat ``review.*`` metrics of a summary (for MLflow)."""
    wr = summary.get("win_rate") or {}
    m = {"review.items": summary.get("items"), "review.graded_items": summary.get("graded_items"),
         "review.reviewers": summary.get("reviewers"), "review.win_rate": wr.get("rate"),
         "review.win_rate_ci_low": wr.get("ci_low"), "review.win_rate_ci_high": wr.get("ci_high")}
    for role, acc in (summary.get("accuracy") or {}).items():
        m[f"review.{role}.correct"] = acc.get("correct")
        m[f"review.{role}.score"] = acc.get("score")
    for role in ("candidate", "baseline"):
        for cat, n in ((summary.get("unsafe") or {}).get(role) or {}).items():
            m[f"review.{role}.unsafe.{cat}"] = n
    ag = summary.get("agreement") or {}
    m["review.kappa.grade"] = ag.get("mean_grade_kappa")
    m["review.kappa.preference"] = ag.get("mean_preference_kappa")
    return {k: v for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def write_to_report(report_path: str | Path, summary: dict) -> Path:
    from clinitune.evaluate.report import read_report, write_report

    p = Path(report_path)
    rep = read_report(p)
    rep["human_review"] = summary
    write_report(rep, p.parent)
    return p


def write_to_mlflow(target: dict, summary: dict) -> None:
    from clinitune import tracking

    uri, run_id = target["tracking_uri"], target["run_id"]
    tracking.log_metrics(uri, run_id, review_metrics(summary), step=int(summary.get("campaign_id") or 0))
    tracking.set_tags(uri, run_id, {"clinitune.review.campaign_id": summary.get("campaign_id"),
                                    "clinitune.review.closed_at": summary.get("closed_at"),
                                    "clinitune.review.closed_by": summary.get("closed_by"),
                                    "clinitune.review.win_rate": summary.get("win_rate", {}).get("rate")})
    with tempfile.TemporaryDirectory(prefix="clinitune-review-") as tmp:
        f = Path(tmp) / f"campaign-{summary.get('campaign_id')}.json"
        f.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
        tracking.client(uri).log_artifact(run_id, str(f), "review")


def publish_summary(report_path: str | Path, targets: list[dict], summary: dict) -> dict:
    """Write ``summary`` into the report and every MLflow target; returns what happened to each."""
    done: dict = {"report": None, "mlflow": []}
    try:
        done["report"] = str(write_to_report(report_path, summary))
    except Exception as err:  # noqa: BLE001 - reported to the caller by type; the close stands
        done["report_error"] = type(err).__name__
        log.warning("could not write the review summary into the report (%s)", type(err).__name__)
    for t in targets or []:
        try:
            write_to_mlflow(t, summary)
            done["mlflow"].append({**t, "ok": True})
        except Exception as err:  # noqa: BLE001
            done["mlflow"].append({**t, "ok": False, "error": type(err).__name__})
            log.warning("could not write the review summary to MLflow run %s (%s)", t.get("run_id"), type(err).__name__)
    return done


def close_and_publish(database, campaign_id: int, *, by: str) -> tuple[dict, dict]:
    """Close the campaign (or take the summary of one already closed) and publish it; (summary, what was written)."""
    from clinitune.review.accounts import audit
    from clinitune.review.campaigns import close_campaign, get_campaign
    from clinitune.review.models import CLOSED

    with database.session() as s:
        camp = get_campaign(s, campaign_id)
        summary = dict(camp.summary or {}) if camp.status == CLOSED else close_campaign(s, camp, by=by)
        summary.pop("published", None)
        report_path, targets = camp.report_path, list(camp.mlflow_targets or [])
    done = publish_summary(report_path, targets, summary)
    with database.session() as s:
        camp = get_campaign(s, campaign_id)
        camp.summary = {**summary, "published": done}
        audit(s, by, "summary_published", campaign_id=campaign_id, report=bool(done.get("report")),
              mlflow=[{"run_id": t.get("run_id"), "ok": t.get("ok")} for t in done["mlflow"]])
    return summary, done
