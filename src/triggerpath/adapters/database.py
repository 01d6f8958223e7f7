"""Engines, migrations, readiness and SQLite backup/restore.

SQLite (the embedded default) runs in WAL mode with foreign keys on, a busy timeout,
and ``BEGIN IMMEDIATE`` transactions: every request writes an audit event, so every
transaction is a writer, and taking the write lock up front avoids the deadlock two
deferred transactions hit when both try to upgrade to writers. PostgreSQL (production)
runs at READ COMMITTED; lost updates are prevented by the version pointer in
``records`` (see :mod:`triggerpath.adapters.orm`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from triggerpath.adapters import migrations
from triggerpath.errors import InvalidInput

SQLITE_BUSY_TIMEOUT_MS = 10_000


def is_sqlite(url: str | sa.URL) -> bool:
    return sa.make_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str | sa.URL) -> Path:
    """The database file of a SQLite URL (refuses in-memory databases)."""
    database = sa.make_url(url).database
    if not database or database == ":memory:":
        raise InvalidInput.single("TRIGGERPATH_DATABASE_URL", "needs a SQLite file, not :memory:")
    return Path(database)


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" event emits BEGIN itself
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    """An engine for ``url``; SQLite files get their folder, WAL and immediate transactions."""
    if is_sqlite(url):
        path = sqlite_file(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 10}, **kwargs
        )
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


# --------------------------------------------------------------------------- migrations
def alembic_config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations shipped"
    return head


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: sa.Engine, revision: str = "head") -> str:
    """Bring the schema to ``revision`` (default: the newest); returns the revision."""
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)
    current = current_revision(engine)
    assert current is not None
    return current


@dataclass(frozen=True)
class Readiness:
    database: bool
    revision: str | None
    head: str
    detail: str

    @property
    def ready(self) -> bool:
        return self.database and self.revision == self.head


def readiness(engine: sa.Engine) -> Readiness:
    """Is the database reachable and are its migrations at head? Never raises."""
    head = head_revision()
    try:
        revision = current_revision(engine)
    except sa.exc.SQLAlchemyError as exc:
        return Readiness(False, None, head, f"database unreachable ({type(exc).__name__})")
    if revision != head:
        return Readiness(
            True, revision, head, f"migrations not current: at {revision}, head {head}"
        )
    return Readiness(True, revision, head, "ok")


# --------------------------------------------------------------------------- backup
def backup_sqlite(url: str, target: Path) -> None:
    """A consistent copy of a live SQLite database (online backup API; WAL included)."""
    source = sqlite_file(url)
    if not source.exists():
        raise InvalidInput.single("TRIGGERPATH_DATABASE_URL", f"{source} does not exist")
    if target.exists():
        raise InvalidInput.single("FILE", f"{target} exists; choose a new file")
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # a self-contained single file
    finally:
        dst.close()
        src.close()


def check_backup(path: Path) -> str:
    """Refuse anything that is not a TriggerPath SQLite backup; return its revision."""
    if not path.is_file():
        raise InvalidInput.single("FILE", f"{path} does not exist")
    with path.open("rb") as fh:
        if fh.read(16) != b"SQLite format 3\x00":
            raise InvalidInput.single("FILE", f"{path} is not a SQLite database")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        ok = conn.execute("PRAGMA integrity_check").fetchone()
        if not ok or ok[0] != "ok":
            raise InvalidInput.single("FILE", f"{path} failed the integrity check")
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.DatabaseError:
            row = None
    finally:
        conn.close()
    if not row:
        raise InvalidInput.single("FILE", f"{path} is not a TriggerPath database (no schema)")
    return str(row[0])


def restore_sqlite(url: str, source: Path) -> str:
    """Replace the database's content with a backup's, in place; returns its revision.

    Uses the backup API into the live file, so WAL and open readers stay consistent.
    Stop the service first: sessions in flight would see the database change under them.
    """
    revision = check_backup(source)
    known = {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if revision not in known:
        raise InvalidInput.single("FILE", f"{source} has unknown schema revision {revision}")
    target = sqlite_file(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return revision
