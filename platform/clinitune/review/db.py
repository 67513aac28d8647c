"""The review database: an engine for any SQLAlchemy URL, migrated to the latest schema on open.

SQLite (the default) runs in WAL mode with a busy timeout, so reviewers grading at the same time
each get their row written (writers queue for the lock rather than failing); PostgreSQL needs
nothing special. Engines hide statement parameters in errors and logs: items hold note text. ``open_database(url)`` returns a :class:`Database` whose ``session()`` is a
context manager committing on success.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from importlib import resources
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from clinitune.errors import UserError

log = logging.getLogger(__name__)
SQLITE_BUSY_TIMEOUT_MS = 30_000


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, hide_parameters=True,
                                   connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, hide_parameters=True, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ImportError) as err:
        raise UserError(f"review database URL '{_safe(url)}' cannot be used ({type(err).__name__}).",
                        fix="pass an SQLAlchemy URL such as sqlite:///work/review.db or postgresql+psycopg://host/db (with its driver installed).") from None
    return engine


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as given (it has no parsable password either)
        return url


def alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("clinitune.review") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def migrate(engine: Engine) -> str:
    """Upgrade the schema to the latest revision (``alembic upgrade head``); returns that revision."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.exc import OperationalError

    logging.getLogger("alembic").setLevel(logging.WARNING)
    cfg = alembic_config(engine)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision() or ""
    except OperationalError as err:
        raise UserError(f"review database '{_safe(str(engine.url))}' cannot be opened or migrated ({type(err.orig).__name__}).",
                        fix="check that the database exists and is writable, or point database_url elsewhere.") from None


class Database:
    """An engine and its session factory for one review database."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.revision = migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        s = self._sessions()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(url: str) -> Database:
    return Database(url)
