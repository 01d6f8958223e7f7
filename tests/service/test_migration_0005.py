"""Migration 0005 on SQLite and PostgreSQL: sessions recorded before it get their clinical
time (``records.occurred_at``) back-filled, so the 24-hour dose ledger still sees them."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql

from triggerpath.adapters import database, orm

from .conftest import _libpq, pg_base_url

PERFORMED = "2026-11-20T09:30:00+01:00"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    base = pg_base_url()
    name = f"tp_m5_{secrets.token_hex(5)}"
    with psycopg.connect(_libpq(base), autocommit=True, connect_timeout=5) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield base.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(_libpq(base), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _old_session(conn: sa.Connection) -> uuid.UUID:
    """A patient and a session written as before 0005 (no occurred_at)."""
    now = datetime.now(UTC)
    conn.execute(
        orm.users.insert().values(
            id=uuid.uuid4(), username="m5-nurse", role="nurse", active=True, created_at=now
        )
    )
    patient, session = uuid.uuid4(), uuid.uuid4()
    for rid, kind, parent, data in (
        (patient, "patient", None, {"mrn": "M5", "sex": "male"}),
        (session, "session", patient, {"performed_at": PERFORMED, "operator": "m5-nurse"}),
    ):
        conn.execute(
            orm.records.insert().values(
                id=rid,
                kind=kind,
                patient_id=patient,
                parent_id=parent,
                current_version=1,
                status="active",
                created_at=now,
                created_by="m5-nurse",
                updated_at=now,
            )
        )
        conn.execute(
            orm.record_versions.insert().values(
                record_id=rid,
                version=1,
                status="active",
                data=data,
                recorded_at=now,
                recorded_by="m5-nurse",
            )
        )
    return session


def test_sessions_recorded_before_0005_get_their_clinical_time(empty_url: str) -> None:
    engine = database.make_engine(empty_url)
    try:
        database.upgrade(engine, "0004_cds_production")
        old = sa.Table("records", sa.MetaData(), autoload_with=engine)
        assert "occurred_at" not in old.c
        with engine.begin() as conn:
            session = _old_session(conn)
        database.upgrade(engine)
        with engine.connect() as conn:
            got = conn.execute(
                sa.select(orm.records.c.occurred_at).where(orm.records.c.id == session)
            ).scalar_one()
        assert got == datetime.fromisoformat(PERFORMED)  # 08:30 UTC
    finally:
        engine.dispose()
