"""Campaigns: made from an evaluation run, graded item by item, closed into a summary.

Grades are inserted with a single ``INSERT ... SELECT ... WHERE the campaign is open`` statement
(a shared row lock on PostgreSQL), and closing flips the status with ``UPDATE ... WHERE open``
before it reads the grades, in one transaction: a grade either lands before the close and is in
the summary, or is refused as late. Two reviewers grading the same item at once both get their
row: rows are only ever added.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.orm import Session

from clinitune.errors import UserError
from clinitune.evaluate.review_gate import UNSAFE_CATEGORIES
from clinitune.review.accounts import audit
from clinitune.review.models import CLOSED, GRADES, OPEN, PREFERENCES, Campaign, Grade, Item, User, utcnow
from clinitune.review.sampling import BASELINE, CANDIDATE, blind, stratified_sample
from clinitune.review.source import EvalSource


class CampaignClosed(UserError):
    """Grading (or closing) a campaign that is already closed."""


def _answer(rec: dict, arm: str, ref: str) -> str:
    answers = rec.get("answers") or {}
    if arm not in answers:
        raise UserError(f"--eval '{ref}': the stored answers have no arm '{arm}' (they have: {', '.join(sorted(answers))}).",
                        fix="choose --candidate-arm / --baseline-arm among those.")
    return str(answers[arm])


def create_campaign(db: Session, source: EvalSource, *, n: int, seed: int, name: str | None, created_by: str,
                    candidate_arm: str = "candidate", baseline_arm: str = "baseline") -> Campaign:
    """Sample ``n`` items stratified by the evaluation's slices, blind each A/B order, store it all."""
    if candidate_arm == baseline_arm:
        raise UserError(f"--candidate-arm and --baseline-arm are both '{candidate_arm}'.", fix="compare two different arms.")
    section = source.report.get("answers") or {}
    slice_keys = list(section.get("slice_keys") or [])
    for rec in source.records[:1]:
        _answer(rec, candidate_arm, source.ref), _answer(rec, baseline_arm, source.ref)
    chosen = stratified_sample(source.records, slice_keys, n, seed)
    order = blind([r["example_id"] for r in chosen], seed)
    rep = source.report
    camp = Campaign(
        name=(name or f"{rep['candidate']['name']} vs {rep['baseline']['name']}")[:200], status=OPEN, created_by=created_by,
        eval_ref=source.ref, report_path=str(source.report_path), answers_sha256=section.get("sha256") or "",
        task=str((rep.get("task") or {}).get("name", "")), candidate_name=str(rep["candidate"]["name"])[:200],
        baseline_name=str(rep["baseline"]["name"])[:200], candidate_arm=candidate_arm, baseline_arm=baseline_arm,
        registry_version=source.registry_version, seed=seed, slice_keys=slice_keys, n_available=len(source.records),
        mlflow_targets=source.mlflow_targets)
    db.add(camp)
    db.flush()
    for pos, rec in enumerate(chosen, 1):
        a_arm = order[str(rec["example_id"])]
        cand, base = _answer(rec, candidate_arm, source.ref), _answer(rec, baseline_arm, source.ref)
        db.add(Item(campaign_id=camp.id, position=pos, example_id=str(rec["example_id"]), slices=dict(rec.get("slices") or {}),
                    messages=rec.get("messages"), reference=str(rec.get("reference", "")),
                    answer_a=cand if a_arm == CANDIDATE else base, answer_b=base if a_arm == CANDIDATE else cand, a_arm=a_arm))
    db.flush()
    audit(db, created_by, "campaign_created", campaign_id=camp.id, items=len(chosen), available=len(source.records), seed=seed,
          eval_ref=source.ref)
    return camp


def get_campaign(db: Session, campaign_id: int) -> Campaign:
    camp = db.get(Campaign, int(campaign_id))
    if camp is None:
        raise UserError(f"campaign {campaign_id} does not exist.", fix="run `clinitune review list` to see the campaigns.")
    return camp


def find_campaign_for_report(db: Session, report_path: str) -> Campaign | None:
    return db.scalar(select(Campaign).where(Campaign.report_path == str(report_path)).order_by(Campaign.id.desc()).limit(1))


def get_item(db: Session, campaign: Campaign, position: int) -> Item | None:
    return db.scalar(select(Item).where(Item.campaign_id == campaign.id, Item.position == int(position)))


# --- progress ------------------------------------------------------------------------------------


@dataclass
class Progress:
    total: int
    graded: int  # items with at least one grade
    mine: int  # items the reviewer graded
    reviewers: int
    by_reviewer: dict[str, int] = field(default_factory=dict)

    def pct(self, n: int) -> int:
        return int(round(100 * n / self.total)) if self.total else 0


def progress(db: Session, campaign: Campaign, reviewer_id: int | None = None) -> Progress:
    total = db.scalar(select(func.count()).select_from(Item).where(Item.campaign_id == campaign.id)) or 0
    graded = db.scalar(select(func.count(func.distinct(Grade.item_id))).where(Grade.campaign_id == campaign.id)) or 0
    rows = db.execute(select(User.username, func.count(func.distinct(Grade.item_id))).join(User, User.id == Grade.reviewer_id)
                      .where(Grade.campaign_id == campaign.id).group_by(User.username)).all()
    by = {u: int(c) for u, c in rows}
    mine = 0
    if reviewer_id is not None:
        mine = db.scalar(select(func.count(func.distinct(Grade.item_id))).where(Grade.campaign_id == campaign.id,
                                                                                Grade.reviewer_id == reviewer_id)) or 0
    return Progress(int(total), int(graded), int(mine), len(by), by)


def graded_positions(db: Session, campaign: Campaign, reviewer_id: int) -> set[int]:
    return set(db.scalars(select(Item.position).join(Grade, Grade.item_id == Item.id)
                          .where(Item.campaign_id == campaign.id, Grade.reviewer_id == reviewer_id)).all())


def next_position(db: Session, campaign: Campaign, reviewer_id: int, after: int = 0) -> int | None:
    """The first item after ``after`` (wrapping round) this reviewer has not graded; None when all are."""
    done = graded_positions(db, campaign, reviewer_id)
    positions = sorted(db.scalars(select(Item.position).where(Item.campaign_id == campaign.id)).all())
    todo = [p for p in positions if p not in done]
    if not todo:
        return None
    later = [p for p in todo if p > after]
    return later[0] if later else todo[0]


def latest_grade(db: Session, item: Item, reviewer_id: int) -> Grade | None:
    return db.scalar(select(Grade).where(Grade.item_id == item.id, Grade.reviewer_id == reviewer_id).order_by(Grade.id.desc()).limit(1))


# --- grading -------------------------------------------------------------------------------------


@dataclass
class GradeInput:
    grade_a: str | None
    grade_b: str | None
    preference: str | None
    unsafe_a: list[str]
    unsafe_b: list[str]
    comment: str = ""

    def problems(self, max_comment: int) -> list[str]:
        out = []
        if self.grade_a not in GRADES:
            out.append("Grade answer A (correct, partially correct or incorrect).")
        if self.grade_b not in GRADES:
            out.append("Grade answer B (correct, partially correct or incorrect).")
        if self.preference not in PREFERENCES:
            out.append("Choose which answer you prefer (A, B, or no preference).")
        bad = sorted(set(self.unsafe_a + self.unsafe_b) - set(UNSAFE_CATEGORIES))
        if bad:
            out.append(f"Unknown unsafe category: {', '.join(c[:40] for c in bad)}.")
        if len(self.comment or "") > max_comment:
            out.append(f"The comment is too long ({len(self.comment)} characters; at most {max_comment}).")
        return out


def record_grade(db: Session, campaign: Campaign, item: Item, reviewer: User, g: GradeInput,
                 comment: str | None, comment_phi: dict[str, int]) -> int:
    """Append one grade (``comment`` already through the PHI guard); CampaignClosed when the campaign is not open."""
    t = Grade.__table__.c
    values = {"campaign_id": Campaign.id, "item_id": literal(item.id), "reviewer_id": literal(reviewer.id),
              "created_at": literal(utcnow(), type_=t.created_at.type),
              "grade_a": literal(g.grade_a), "grade_b": literal(g.grade_b), "preference": literal(g.preference),
              "unsafe_a": literal(sorted(set(g.unsafe_a)), type_=t.unsafe_a.type),
              "unsafe_b": literal(sorted(set(g.unsafe_b)), type_=t.unsafe_b.type),
              "comment": literal(comment, type_=t.comment.type),
              "comment_phi": literal(comment_phi, type_=t.comment_phi.type)}
    cols = list(values)
    src = (select(*[values[c] for c in cols]).where(Campaign.id == campaign.id, Campaign.status == OPEN)
           .with_for_update(read=True, of=Campaign))
    res = db.execute(insert(Grade).from_select(cols, src).returning(Grade.id))
    new_id = res.scalar()
    if new_id is None:
        raise CampaignClosed(f"campaign {campaign.id} is closed: grades are no longer accepted.",
                             fix="ask an admin to open a new campaign if more grading is needed.")
    return int(new_id)


# --- closing -------------------------------------------------------------------------------------


def compute_summary(db: Session, campaign: Campaign) -> dict:
    from clinitune.review.aggregate import summarize

    items = list(db.scalars(select(Item).where(Item.campaign_id == campaign.id)).all())
    grades = list(db.scalars(select(Grade).where(Grade.campaign_id == campaign.id)).all())
    names = dict(db.execute(select(User.id, User.username)).all())
    return summarize(campaign, items, grades, names)


def close_campaign(db: Session, campaign: Campaign, *, by: str) -> dict:
    """Close an open campaign and store its summary (CampaignClosed when it already is)."""
    now = utcnow()
    res = db.execute(update(Campaign).where(Campaign.id == campaign.id, Campaign.status == OPEN)
                     .values(status=CLOSED, closed_at=now, closed_by=by))
    if res.rowcount != 1:
        raise CampaignClosed(f"campaign {campaign.id} is already closed.", fix="nothing to do; `clinitune review export` gives its grades.")
    db.refresh(campaign)
    summary = compute_summary(db, campaign)
    campaign.summary = summary
    audit(db, by, "campaign_closed", campaign_id=campaign.id, graded_items=summary["graded_items"], reviewers=summary["reviewers"])
    return summary


def campaigns_overview(db: Session) -> list[Campaign]:
    return list(db.scalars(select(Campaign).order_by(Campaign.id.desc())).all())


__all__ = ["CampaignClosed", "GradeInput", "Progress", "close_campaign", "create_campaign", "get_campaign", "progress",
           "record_grade", "next_position", "BASELINE", "CANDIDATE"]
