"""A campaign's grades as CSV or JSON, for the health system's own governance records.

Every grade row is exported (the audit trail), superseded ones included, with ``latest`` marking
the row that counts; blinded labels are given with the roles behind them. No note text: items are
named by example id; comments are the stored, PHI-redacted ones. In CSV, a cell that a spreadsheet
would read as a formula (starting with ``= + - @``, tab or carriage return) is prefixed with ``'``.
"""

from __future__ import annotations

import csv
import io
import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinitune.review.models import Campaign, Grade, Item, User

COLUMNS = ["grade_id", "campaign_id", "item_position", "example_id", "reviewer", "graded_at", "latest",
           "grade_a", "grade_b", "preference", "unsafe_a", "unsafe_b", "a_is", "grade_candidate", "grade_baseline",
           "preferred", "unsafe_candidate", "unsafe_baseline", "comment", "comment_phi_redactions"]


def grade_rows(db: Session, campaign: Campaign) -> list[dict]:
    rows = db.execute(select(Grade, Item, User.username).join(Item, Item.id == Grade.item_id).join(User, User.id == Grade.reviewer_id)
                      .where(Grade.campaign_id == campaign.id).order_by(Grade.id)).all()
    latest: dict[tuple[int, int], int] = {}
    for g, _, _ in rows:
        latest[(g.item_id, g.reviewer_id)] = max(g.id, latest.get((g.item_id, g.reviewer_id), 0))
    out = []
    for g, item, username in rows:
        role = {"A": item.arm("A"), "B": item.arm("B")}
        by_role = {role["A"]: (g.grade_a, g.unsafe_a), role["B"]: (g.grade_b, g.unsafe_b)}
        out.append({
            "grade_id": g.id, "campaign_id": campaign.id, "item_position": item.position, "example_id": item.example_id,
            "reviewer": username, "graded_at": g.created_at.isoformat(), "latest": latest[(g.item_id, g.reviewer_id)] == g.id,
            "grade_a": g.grade_a, "grade_b": g.grade_b, "preference": g.preference, "unsafe_a": list(g.unsafe_a or []),
            "unsafe_b": list(g.unsafe_b or []), "a_is": item.a_arm,
            "grade_candidate": by_role["candidate"][0], "grade_baseline": by_role["baseline"][0],
            "preferred": "tie" if g.preference == "tie" else role[g.preference],
            "unsafe_candidate": list(by_role["candidate"][1] or []), "unsafe_baseline": list(by_role["baseline"][1] or []),
            "comment": g.comment or "", "comment_phi_redactions": dict(g.comment_phi or {}),
        })
    return out


def _cell(v) -> str:
    if isinstance(v, (list, dict)):
        v = json.dumps(v, sort_keys=True) if isinstance(v, dict) else ";".join(v)
    s = "" if v is None else str(v)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


def export_grades(db: Session, campaign: Campaign, fmt: str) -> str:
    """The campaign's grades as ``csv`` or ``json`` text."""
    rows = grade_rows(db, campaign)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([_cell(r[c]) for c in COLUMNS])
        return buf.getvalue()
    meta = {"id": campaign.id, "name": campaign.name, "status": campaign.status, "created_at": campaign.created_at.isoformat(),
            "created_by": campaign.created_by, "closed_at": campaign.closed_at.isoformat() if campaign.closed_at else None,
            "closed_by": campaign.closed_by, "eval_ref": campaign.eval_ref, "report_path": campaign.report_path,
            "answers_sha256": campaign.answers_sha256, "candidate": campaign.candidate_name, "baseline": campaign.baseline_name,
            "arms": {"candidate": campaign.candidate_arm, "baseline": campaign.baseline_arm}, "seed": campaign.seed,
            "slice_keys": campaign.slice_keys, "registry_version": campaign.registry_version}
    items = [{"position": it.position, "example_id": it.example_id, "slices": it.slices, "a_is": it.a_arm}
             for it in db.scalars(select(Item).where(Item.campaign_id == campaign.id).order_by(Item.position))]
    return json.dumps({"format": "clinitune.review_export/1", "campaign": meta, "summary": campaign.summary, "items": items,
                       "grades": rows}, indent=2, default=str)
