"""Initial review schema: accounts, sessions, sign-in attempts, campaigns, items, append-only grades, audit.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from clinitune.review.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_APPEND_ONLY_SQLITE = """
CREATE TRIGGER grades_no_{what} BEFORE {WHAT} ON grades
BEGIN SELECT RAISE(ABORT, 'grades are append-only: add a new grade instead'); END
"""
_APPEND_ONLY_PG_FN = """
CREATE OR REPLACE FUNCTION clinitune_grades_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'grades are append-only: add a new grade instead'; END
$$ LANGUAGE plpgsql
"""
_APPEND_ONLY_PG = """
CREATE TRIGGER grades_append_only BEFORE UPDATE OR DELETE ON grades
FOR EACH ROW EXECUTE FUNCTION clinitune_grades_append_only()
"""


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("password_changed_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("succeeded", sa.Boolean, nullable=False),
    )
    op.create_index("ix_login_attempts_user_ip_at", "login_attempts", ["username", "ip", "at"])
    op.create_index("ix_login_attempts_ip_at", "login_attempts", ["ip", "at"])
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("eval_ref", sa.Text, nullable=False),
        sa.Column("report_path", sa.Text, nullable=False),
        sa.Column("answers_sha256", sa.String(64), nullable=False),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("candidate_name", sa.String(200), nullable=False),
        sa.Column("baseline_name", sa.String(200), nullable=False),
        sa.Column("candidate_arm", sa.String(64), nullable=False),
        sa.Column("baseline_arm", sa.String(64), nullable=False),
        sa.Column("registry_version", sa.String(32), nullable=True),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("slice_keys", sa.JSON, nullable=False),
        sa.Column("n_available", sa.Integer, nullable=False),
        sa.Column("mlflow_targets", sa.JSON, nullable=False),
        sa.Column("summary", sa.JSON, nullable=True),
    )
    op.create_table(
        "items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id"), nullable=False, index=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("example_id", sa.String(200), nullable=False),
        sa.Column("slices", sa.JSON, nullable=False),
        sa.Column("messages", sa.JSON, nullable=True),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("answer_a", sa.Text, nullable=False),
        sa.Column("answer_b", sa.Text, nullable=False),
        sa.Column("a_arm", sa.String(16), nullable=False),
        sa.UniqueConstraint("campaign_id", "position", name="uq_items_campaign_position"),
    )
    op.create_table(
        "grades",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id"), nullable=False, index=True),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
        sa.Column("reviewer_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("grade_a", sa.String(16), nullable=False),
        sa.Column("grade_b", sa.String(16), nullable=False),
        sa.Column("preference", sa.String(8), nullable=False),
        sa.Column("unsafe_a", sa.JSON, nullable=False),
        sa.Column("unsafe_b", sa.JSON, nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("comment_phi", sa.JSON, nullable=False),
    )
    op.create_index("ix_grades_item_reviewer", "grades", ["item_id", "reviewer_id"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for what in ("update", "delete"):
            op.execute(_APPEND_ONLY_SQLITE.format(what=what, WHAT=what.upper()))
    elif dialect == "postgresql":
        op.execute(_APPEND_ONLY_PG_FN)
        op.execute(_APPEND_ONLY_PG)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS grades_append_only ON grades")
        op.execute("DROP FUNCTION IF EXISTS clinitune_grades_append_only()")
    for table in ("settings", "audit_events", "grades", "items", "campaigns", "login_attempts", "sessions", "users"):
        op.drop_table(table)
