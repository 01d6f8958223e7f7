"""Engines, migrations, readiness and SQLite backup/restore.

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL`` (a commit is
on disk before it is acknowledged, so a power loss cannot drop an acknowledged write),
foreign keys on, a busy timeout, and ``BEGIN IMMEDIATE`` transactions: every request
writes an audit event, so every transaction is a writer, and taking the write lock up
front avoids the deadlock two deferred transactions hit when both try to upgrade to
writers. PostgreSQL (production)
runs at READ COMMITTED; lost updates are prevented by the version pointer in
``records`` (see :mod:`triggerpath.adapters.orm`). On PostgreSQL the tables belong to
an owner role and the service role may only SELECT and INSERT the append-only tables
(:func:`apply_pg_privileges`).

Every engine is made with ``hide_parameters=True``: a database error's message never
carries the statement's parameters (MRNs, names, notes) into a log.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from triggerpath.adapters import migrations
from triggerpath.adapters.pg_roles import (
    SERVICE_ROLE,
    apply_pg_privileges,
    has_security_schema,
)
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
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_private_file(path: Path) -> None:
    """Create ``path`` (and its folder) readable by the owner only, unless it exists."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def readable_by_others(path: Path) -> bool:
    """Does anyone but the owner have access to ``path`` (or its WAL files)?"""
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if candidate.exists() and stat.S_IMODE(candidate.stat().st_mode) & 0o077:
            return True
    return False


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    """An engine for ``url``; SQLite files get their folder, WAL and immediate transactions.

    A new SQLite file is created 0600 (SQLite gives its WAL files the same mode).
    """
    kwargs.setdefault("hide_parameters", True)
    if is_sqlite(url):
        path = sqlite_file(url)
        create_private_file(path)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 10}, **kwargs
        )
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    # an outage must fail fast (503), never hang a request: bounded connect and pool waits
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_timeout", 5)
    kwargs.setdefault("connect_args", {"connect_timeout": 5})
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
        if conn.dialect.name == "postgresql" and has_security_schema(conn):
            apply_pg_privileges(conn)  # tables added by later revisions get them too
    current = current_revision(engine)
    assert current is not None
    return current


def pg_role_problem(engine: sa.Engine) -> str | None:
    """Why the service's PostgreSQL role is too powerful, or None."""
    try:
        with engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT r.rolsuper, has_table_privilege(current_user, 'audit_events', "
                "'TRUNCATE') OR has_table_privilege(current_user, 'audit_events', 'UPDATE') "
                "FROM pg_roles r WHERE r.rolname = current_user"
            ).first()
    except sa.exc.SQLAlchemyError:
        return None  # unreachable or not migrated: /readyz reports it
    if row is None:
        return None
    if row[0]:
        return f"connects as a superuser; connect as a member of {SERVICE_ROLE}"
    if row[1]:
        return f"the database role can rewrite audit_events; connect as a member of {SERVICE_ROLE}"
    return None


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
