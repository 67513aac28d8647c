"""The review database: migrated by Alembic on open (idempotent), bad URLs as one-line errors, and
statement parameters (which can hold note text) kept out of error messages."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from clinitune.errors import UserError
from clinitune.review.db import Database


def test_open_migrates_to_head_once_and_again(tmp_path):
    from alembic.script import ScriptDirectory

    from clinitune.review.db import alembic_config

    url = f"sqlite:///{tmp_path / 'r.db'}"
    db = Database(url)
    head = ScriptDirectory.from_config(alembic_config(db.engine)).get_current_head()
    assert db.revision == head
    tables = set(inspect(db.engine).get_table_names())
    assert {"users", "sessions", "login_attempts", "campaigns", "items", "grades", "audit_events", "settings",
            "alembic_version"} <= tables
    db.dispose()
    again = Database(url)  # a second start finds the schema current and changes nothing
    assert again.revision == head and set(inspect(again.engine).get_table_names()) == tables
    again.dispose()


def test_bad_urls_are_one_line_errors(tmp_path):
    for url in ("notadb://x", "postgresql+nosuchdriver://h/db", f"sqlite:///{tmp_path}/missing-dir/sub/r.db"):
        with pytest.raises(UserError) as err:
            Database(url)
        assert "\n" not in str(err.value) and "Fix:" in str(err.value)


def test_errors_do_not_carry_note_text(database, campaign_in):
    from clinitune.review.models import Item

    cid = campaign_in(n=2)
    secret = "Patient seen for chest pain radiating to the left arm"
    with pytest.raises(Exception) as err, database.session() as s:  # a duplicate position: IntegrityError
        s.add(Item(campaign_id=cid, position=1, example_id="x", slices={}, messages=[{"role": "user", "content": secret}],
                   reference=secret, answer_a=secret, answer_b=secret, a_arm="candidate"))
        s.flush()
    assert "UNIQUE" in str(err.value) and secret not in str(err.value)
