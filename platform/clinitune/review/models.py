"""The review database's tables (SQLAlchemy 2). The schema itself is created and changed only by
the Alembic migrations in ``clinitune/review/migrations`` (``db.migrate`` runs them on start).

* ``users``: accounts with a role (reviewer, admin) and an Argon2id password hash;
* ``sessions``: server-side sessions, keyed by the SHA-256 of the cookie's random token, each with
  its CSRF token;
* ``login_attempts``: every sign-in attempt (user name as typed, client address, outcome) for the
  rate limit and the audit;
* ``campaigns`` and ``items``: what is graded; each item's blinded A/B order is recorded in ``a_arm``;
* ``grades``: append-only (database triggers refuse UPDATE and DELETE): a reviewer grading an item
  again adds a row, and the latest row per (item, reviewer) counts;
* ``audit_events``: who created, closed or exported a campaign, who added or changed an account
  (ids and counts; never note text or comments);
* ``settings``: the generated form-signing key when none is configured.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ROLES = ("reviewer", "admin")
GRADES = ("correct", "partial", "incorrect")
PREFERENCES = ("A", "B", "tie")
OPEN, CLOSED = "open", "closed"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class SessionRow(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the cookie token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    user: Mapped[User] = relationship(lazy="joined")


class LoginAttempt(Base):
    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_user_ip_at", "username", "ip", "at"), Index("ix_login_attempts_ip_at", "ip", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    succeeded: Mapped[bool] = mapped_column(Boolean)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=OPEN)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    closed_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    eval_ref: Mapped[str] = mapped_column(Text)  # what `review create --eval` was given
    report_path: Mapped[str] = mapped_column(Text)  # the evaluation's report.json
    answers_sha256: Mapped[str] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(String(64))
    candidate_name: Mapped[str] = mapped_column(String(200))
    baseline_name: Mapped[str] = mapped_column(String(200))
    candidate_arm: Mapped[str] = mapped_column(String(64))
    baseline_arm: Mapped[str] = mapped_column(String(64))
    registry_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    seed: Mapped[int] = mapped_column(Integer)
    slice_keys: Mapped[list[Any]] = mapped_column()
    n_available: Mapped[int] = mapped_column(Integer)
    mlflow_targets: Mapped[list[Any]] = mapped_column()  # [{"tracking_uri", "run_id", "what"}]
    summary: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    items: Mapped[list["Item"]] = relationship(back_populates="campaign", order_by="Item.position")


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("campaign_id", "position", name="uq_items_campaign_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 1..n, the order reviewers see
    example_id: Mapped[str] = mapped_column(String(200))
    slices: Mapped[dict[str, Any]] = mapped_column()
    messages: Mapped[list[Any] | None] = mapped_column(nullable=True)  # the de-identified prompt (null: withheld)
    reference: Mapped[str] = mapped_column(Text)
    answer_a: Mapped[str] = mapped_column(Text)
    answer_b: Mapped[str] = mapped_column(Text)
    a_arm: Mapped[str] = mapped_column(String(16))  # "candidate" or "baseline": the recorded blinding
    campaign: Mapped[Campaign] = relationship(back_populates="items")

    def arm(self, label: str) -> str:
        """The role ("candidate" / "baseline") behind the blinded label "A" or "B"."""
        other = "baseline" if self.a_arm == "candidate" else "candidate"
        return self.a_arm if label == "A" else other


class Grade(Base):
    __tablename__ = "grades"
    __table_args__ = (Index("ix_grades_item_reviewer", "item_id", "reviewer_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    grade_a: Mapped[str] = mapped_column(String(16))
    grade_b: Mapped[str] = mapped_column(String(16))
    preference: Mapped[str] = mapped_column(String(8))
    unsafe_a: Mapped[list[Any]] = mapped_column()
    unsafe_b: Mapped[list[Any]] = mapped_column()
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)  # after the PHI guard (redacted)
    comment_phi: Mapped[dict[str, Any]] = mapped_column()  # PHI kinds the guard replaced, with counts
    item: Mapped[Item] = relationship()
    reviewer: Mapped[User] = relationship()


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column()


class Setting(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
