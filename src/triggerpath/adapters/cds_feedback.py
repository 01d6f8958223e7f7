"""Durable store for CDS Hooks cards, feedback, hook-call answers and jti (SQLAlchemy Core).

Implements the ``CdsStore`` ports of :mod:`triggerpath.services.feedback`, so the feedback
loop survives restarts and is shared by every worker: each card is kept with its evaluation
trace (the first issue wins: a repeated hookInstance never hits the unique key), each
accepted/overridden outcome is appended, never changed, and each signed call's ``jti`` is
claimed by one atomic insert that every worker sees.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, cast

import orjson
import psycopg
import sqlalchemy as sa
from psycopg.types.json import set_json_dumps
from sqlalchemy.dialects import postgresql, sqlite

from triggerpath.adapters import orm
from triggerpath.services.feedback import Admission, FeedbackRecord, HookCall, IssuedCard

PURGE_EVERY_SECONDS = 60.0
KEEP_CALLS = timedelta(days=1)
T = TypeVar("T")

#: A hook call's one statement (PostgreSQL): claim the jti and read any answer already
#: given to the same (client, service, hookInstance). Sent as is to psycopg, which
#: prepares it after a few calls (no SQLAlchemy compilation on the request path).
ADMIT_SQL = f"""
WITH claimed AS (
    INSERT INTO {orm.cds_jti.name} (issuer, jti, expires_at)
    VALUES (%(issuer)s, %(jti)s, %(expires_at)s)
    ON CONFLICT DO NOTHING RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM claimed), c.request_digest, c.response, c.created_at
FROM (SELECT 1) AS one
LEFT JOIN {orm.cds_hook_calls.name} AS c
    ON c.client = %(issuer)s AND c.service_id = %(service_id)s
    AND c.hook_instance = %(hook_instance)s
"""


class SqlFeedbackStore:
    """Cards, feedback, hook-call answers and the jti replay store in the clinic database."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._next_purge = 0.0
        self._local = threading.local()

    def _insert_new(self, table: sa.Table) -> Any:
        """INSERT that skips rows whose key is already there (PostgreSQL and SQLite)."""
        if self._engine.dialect.name == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        if self._engine.dialect.name == "sqlite":
            return sqlite.insert(table).on_conflict_do_nothing()
        raise NotImplementedError(f"no conflict-free insert for {self._engine.dialect.name}")

    def _on_request_path(self, work: Callable[[sa.Connection], T]) -> T:
        """Run one statement of the request path with as few round trips as possible.

        PostgreSQL: a connection kept per thread in autocommit, with
        ``synchronous_commit`` off (no pool checkout, ping, BEGIN or WAL-flush wait per
        call; a crash may forget the last fraction of a second of jti, which expire within
        minutes anyway); a dropped connection is replaced once. SQLite: a short
        transaction from the pool.
        """
        if self._engine.dialect.name != "postgresql":
            with self._engine.begin() as conn:
                return work(conn)
        for attempt in (1, 2):
            conn = self._kept_connection()
            try:
                return work(conn)
            except sa.exc.DBAPIError as exc:
                self._local.conn = None
                conn.close()
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    def _kept_connection(self) -> sa.Connection:
        conn: sa.Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("SET synchronous_commit TO OFF")
            self._local.conn = conn
        return conn

    def claim(self, issuer: str, jti: str, expires_at: datetime, now: datetime) -> bool:
        """One atomic insert: True for the first use of (issuer, jti), False for a replay."""
        return self._on_request_path(lambda conn: self.claim_on(conn, issuer, jti, expires_at))

    def admit(self, a: Admission) -> tuple[bool, HookCall | None]:
        """Claim the jti and read the answer already given: one round trip (PostgreSQL),
        one short transaction (SQLite)."""
        if self._engine.dialect.name != "postgresql":
            with self._engine.begin() as conn:
                claimed = self.claim_on(conn, a.issuer, a.jti, a.expires_at)
                return claimed, self._hook_call_on(conn, a.issuer, a.service_id, a.hook_instance)
        params = {
            "issuer": a.issuer[:255],
            "jti": a.jti[:255],
            "expires_at": a.expires_at,
            "service_id": a.service_id,
            "hook_instance": a.hook_instance,
        }
        row = self._pg_row(ADMIT_SQL, params)
        if row[1] is None:
            return bool(row[0]), None
        created = row[3].astimezone(UTC)
        answer = HookCall(
            a.issuer[:255], a.service_id, a.hook_instance, row[1], bytes(row[2]), created
        )
        return bool(row[0]), answer

    def _pg_row(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...]:
        """One row of a constant statement on this thread's kept connection, straight
        through psycopg; a dropped connection is replaced once, an outage is the
        ``OperationalError`` the app answers 503 for."""
        for attempt in (1, 2):
            conn = self._kept_connection()
            driver = conn.connection.driver_connection
            assert isinstance(driver, psycopg.Connection)
            try:
                row = driver.execute(sql, params).fetchone()
                assert row is not None
                return tuple(row)
            except psycopg.OperationalError as exc:
                self._local.conn = None
                conn.invalidate()
                if attempt == 2 or not driver.closed:
                    raise sa.exc.OperationalError("cds admit", None, exc) from exc
        raise AssertionError("unreachable")

    def claim_on(self, conn: sa.Connection, issuer: str, jti: str, expires_at: datetime) -> bool:
        row = {"issuer": issuer[:255], "jti": jti[:255], "expires_at": expires_at}
        insert = self._insert_new(orm.cds_jti).returning(orm.cds_jti.c.jti)
        return conn.execute(insert, row).first() is not None

    def _purge(self, conn: sa.Connection, now: datetime) -> None:
        """Now and then, drop expired jti and day-old answers (bounded tables)."""
        if time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + PURGE_EVERY_SECONDS
        conn.execute(sa.delete(orm.cds_jti).where(orm.cds_jti.c.expires_at < now))
        old = orm.cds_hook_calls.c.created_at < now - KEEP_CALLS
        conn.execute(sa.delete(orm.cds_hook_calls).where(old))

    def record_calls(self, calls: Sequence[HookCall]) -> None:
        if not calls:
            return
        rows = [
            {
                "client": c.client[:255],
                "service_id": c.service_id,
                "hook_instance": c.hook_instance,
                "request_digest": c.request_digest,
                "response": c.response,
                "created_at": c.created_at,
            }
            for c in calls
        ]
        with self._engine.begin() as conn:  # the write-behind thread, off the request path
            conn.execute(self._insert_new(orm.cds_hook_calls), rows)
            self._purge(conn, max(c.created_at for c in calls))

    def hook_call(self, client: str, service_id: str, hook_instance: str) -> HookCall | None:
        return self._on_request_path(
            lambda conn: self._hook_call_on(conn, client, service_id, hook_instance)
        )

    def _hook_call_on(
        self, conn: sa.Connection, client: str, service_id: str, hook_instance: str
    ) -> HookCall | None:
        t = orm.cds_hook_calls
        q = sa.select(t).where(
            t.c.client == client[:255],
            t.c.service_id == service_id,
            t.c.hook_instance == hook_instance,
        )
        row = conn.execute(q).first()
        if row is None:
            return None
        m = row._mapping
        return HookCall(
            m["client"],
            m["service_id"],
            m["hook_instance"],
            m["request_digest"],
            bytes(m["response"]),
            m["created_at"],
        )

    def record_cards(self, cards: Sequence[IssuedCard]) -> None:
        if not cards:
            return
        rows = [
            {
                "uuid": c.uuid,
                "service_id": c.service_id,
                "hook_instance": c.hook_instance,
                "patient_id": c.patient_id,
                "code": c.code,
                "indicator": c.indicator,
                "summary": c.summary[:200],
                "suggestion_ids": list(c.suggestion_ids),
                "draft_orders": list(c.draft_orders),
                "trace": dict(c.trace),
                "issued_at": c.issued_at,
                "client": c.client,
            }
            for c in cards
        ]
        with self._engine.begin() as conn:
            driver = conn.connection.driver_connection
            pg = isinstance(driver, psycopg.Connection)
            if pg:  # the traces dumped by orjson (they were in the answer orjson wrote)
                set_json_dumps(_json_text, driver)
            try:
                conn.execute(self._insert_new(orm.cds_cards), rows)  # a repeat keeps the first
            finally:
                if pg:  # the pooled connection goes back as it came (psycopg's default)
                    set_json_dumps(json.dumps, driver)

    def card(self, card_uuid: str) -> IssuedCard | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(orm.cds_cards).where(orm.cds_cards.c.uuid == card_uuid)
            ).first()
        if row is None:
            return None
        m = row._mapping
        return IssuedCard(
            uuid=m["uuid"],
            service_id=m["service_id"],
            hook_instance=m["hook_instance"],
            patient_id=m["patient_id"],
            code=m["code"],
            indicator=m["indicator"],
            summary=m["summary"],
            suggestion_ids=tuple(m["suggestion_ids"]),
            draft_orders=tuple(m["draft_orders"]),
            trace=m["trace"],
            issued_at=m["issued_at"],
            client=m["client"],
        )

    def add_feedback(self, records: Sequence[FeedbackRecord]) -> None:
        if not records:
            return
        rows = [
            {
                "card": r.card,
                "service_id": r.service_id,
                "outcome": r.outcome,
                "outcome_timestamp": r.outcome_timestamp,
                "received_at": r.received_at,
                "client": r.client,
                "accepted_suggestions": list(r.accepted_suggestions),
                "override_system": r.override_system,
                "override_code": r.override_code,
                "override_display": r.override_display,
                "user_comment": r.user_comment,
                "card_code": r.card_code,
                "card_known": r.card_known,
            }
            for r in records
        ]
        with self._engine.begin() as conn:
            conn.execute(sa.insert(orm.cds_feedback), rows)

    def feedback(self, card_uuid: str | None = None) -> list[FeedbackRecord]:
        q = sa.select(orm.cds_feedback).order_by(orm.cds_feedback.c.id)
        if card_uuid is not None:
            q = q.where(orm.cds_feedback.c.card == card_uuid)
        with self._engine.connect() as conn:
            rows = conn.execute(q).all()
        return [_record(r._mapping) for r in rows]


def _json_text(value: Any) -> str:
    """JSON columns of the card batch (the write-behind thread): orjson, not ``json``."""
    return orjson.dumps(value).decode()


def _record(m: Any) -> FeedbackRecord:
    return FeedbackRecord(
        service_id=m["service_id"],
        card=m["card"],
        outcome=cast(Literal["accepted", "overridden"], m["outcome"]),
        outcome_timestamp=m["outcome_timestamp"],
        received_at=m["received_at"],
        client=m["client"],
        accepted_suggestions=tuple(m["accepted_suggestions"]),
        override_system=m["override_system"],
        override_code=m["override_code"],
        override_display=m["override_display"],
        user_comment=m["user_comment"],
        card_code=m["card_code"],
        card_known=m["card_known"],
    )
