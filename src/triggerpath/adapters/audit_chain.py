"""The audit trail as a hash chain: each event carries the SHA-256 of its predecessor.

``hash = SHA-256(prev_hash || canonical JSON of the event)``, where the canonical form
covers every column but the id. Changing, removing or reordering any event breaks the
chain from that point on, and :func:`verify` names the first event at fault. Writers
are serialised so the chain is linear: PostgreSQL takes a transaction-scoped advisory
lock before reading the last hash (held until commit, a few milliseconds, because the
event is the last statement of every transaction); SQLite transactions already hold
the write lock (``BEGIN IMMEDIATE``).

Events written before migration 0003 carry no hash; the chain starts at the first
event that has one, and :func:`verify` counts the earlier ones as ``unchained``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from triggerpath.adapters import orm
from triggerpath.services.model import AuditEvent

#: Any 64-bit constant, the same for every writer of one database.
CHAIN_LOCK = 0x7470_6175_6469_74
GENESIS = "0" * 64


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def canonical(values: dict[str, Any]) -> bytes:
    """The bytes an event's hash covers (stable across backends and Python versions)."""
    ids = values.get("patient_ids") or []
    doc = {
        "at": _iso(values["at"]),
        "request_id": values["request_id"],
        "actor": values["actor"],
        "role": values["role"],
        "action": values["action"],
        "outcome": values["outcome"],
        "patient_id": str(values["patient_id"]) if values["patient_id"] else None,
        "record_id": str(values["record_id"]) if values["record_id"] else None,
        "patient_ids": [str(p) for p in ids],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def link(prev_hash: str, values: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + b"|" + canonical(values)).hexdigest()


def _last_hash(conn: sa.Connection) -> str:
    a = orm.audit_events
    found = conn.execute(
        sa.select(a.c.hash).where(a.c.hash.is_not(None)).order_by(a.c.id.desc()).limit(1)
    ).scalar()
    return str(found) if found else GENESIS


def append(conn: sa.Connection, event: AuditEvent) -> None:
    """Insert ``event`` as the chain's new last link (inside the caller's transaction)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(CHAIN_LOCK)))
    values: dict[str, Any] = {
        "at": event.at,
        "request_id": event.request_id,
        "actor": event.actor,
        "role": event.role,
        "action": event.action,
        "patient_id": event.patient_id,
        "record_id": event.record_id,
        "outcome": event.outcome,
        "patient_ids": [str(p) for p in event.patient_ids] or None,
    }
    prev = _last_hash(conn)
    values["prev_hash"] = prev
    values["hash"] = link(prev, values)
    conn.execute(orm.audit_events.insert().values(**values))


@dataclass(frozen=True)
class ChainReport:
    """What :func:`verify` found."""

    checked: int
    unchained: int
    first_bad_id: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad_id is None


def verify(conn: sa.Connection, batch: int = 5000) -> ChainReport:
    """Walk the trail in id order and recompute every link."""
    a = orm.audit_events
    prev: str | None = None
    checked = unchained = 0
    after = 0
    while True:
        rows = conn.execute(
            sa.select(a).where(a.c.id > after).order_by(a.c.id).limit(batch)
        ).fetchall()
        if not rows:
            return ChainReport(checked, unchained)
        for row in rows:
            after = row.id
            values = dict(row._mapping)
            if row.hash is None:
                if prev is not None:
                    return ChainReport(checked, unchained, row.id, "hash missing")
                unchained += 1
                continue
            expected_prev = GENESIS if prev is None else prev
            if row.prev_hash != expected_prev:
                return ChainReport(checked, unchained, row.id, "does not follow its predecessor")
            if link(expected_prev, values) != row.hash:
                return ChainReport(checked, unchained, row.id, "content does not match its hash")
            prev = row.hash
            checked += 1
