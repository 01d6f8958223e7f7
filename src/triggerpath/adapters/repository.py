"""Repositories: the services' view of the database, as plain objects.

Each repository works on the connection (and transaction) of one unit of work;
none of them commits. Clinical versions and audit events are only ever inserted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast
from uuid import UUID

import sqlalchemy as sa

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

from triggerpath.adapters import audit_chain, orm
from triggerpath.domain.identity import search_key
from triggerpath.services.model import (
    Addendum,
    ApiKey,
    AuditEvent,
    AuditQuery,
    Kind,
    NewRecord,
    NextVersion,
    PatientIndex,
    PatientSearch,
    Record,
    RecordQuery,
    Role,
    Status,
    User,
    Version,
    Window,
)

T = TypeVar("T", bound="DataclassInstance")


def _from_row(cls: type[T], row: Any, **values: Any) -> T:
    """A service object from a result row: each field from the column of its name (the
    plain types in ``services.model`` name their fields as the tables name their columns)."""
    found = {f.name: getattr(row, f.name) for f in fields(cls) if f.name not in values}
    return cls(**found, **values)


def _to_row(table: sa.Table, obj: object, **values: Any) -> dict[str, Any]:
    """Insert values: each column of ``table`` from ``obj``'s attribute of its name, if any."""
    found = {
        c.name: getattr(obj, c.name)
        for c in table.columns
        if c.name not in values and hasattr(obj, c.name)
    }
    return {**found, **values}


def _version(row: Any) -> Version:
    return _from_row(Version, row, status=cast(Status, row.status), data=dict(row.data))


def _version_values(record_id: UUID, v: Version) -> dict[str, Any]:
    return _to_row(orm.record_versions, v, record_id=record_id)


class SqlRecords:
    """Clinical records: an index row plus an append-only chain of versions."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def _select(self) -> sa.Select[Any]:
        r, v = orm.records, orm.record_versions
        return sa.select(
            r.c.id,
            r.c.kind,
            r.c.patient_id,
            r.c.parent_id,
            r.c.created_at,
            r.c.created_by,
            v.c.version,
            v.c.status,
            v.c.data,
            v.c.recorded_at,
            v.c.recorded_by,
            v.c.reason,
            v.c.signed_at,
            v.c.signed_by,
        ).join(v, sa.and_(v.c.record_id == r.c.id, v.c.version == r.c.current_version))

    @staticmethod
    def _record(row: Any) -> Record:
        return _from_row(Record, row, kind=cast(Kind, row.kind), current=_version(row))

    def add(self, new: NewRecord) -> None:
        first = new.first
        index = _to_row(
            orm.records,
            new,
            current_version=first.version,
            status=first.status,
            created_at=first.recorded_at,
            created_by=first.recorded_by,
            updated_at=first.recorded_at,
            **_identity_values(new.identity),
        )
        self.conn.execute(orm.records.insert().values(index))
        self.conn.execute(orm.record_versions.insert().values(_version_values(new.id, first)))

    def get(self, record_id: UUID) -> Record | None:
        row = self.conn.execute(self._select().where(orm.records.c.id == record_id)).first()
        return self._record(row) if row else None

    def append(self, next_: NextVersion) -> bool:
        """Add ``new`` on top of version ``expected``; False when someone got there first.

        The index row moves from ``expected`` to ``new.version`` in one conditional
        UPDATE: of two writers who read the same version, the database lets exactly
        one move it (the other's UPDATE matches no row), and the primary key on
        (record_id, version) backs that up.
        """
        r, record_id, expected, new = orm.records, next_.record_id, next_.expected, next_.new
        values: dict[str, Any] = {
            "current_version": new.version,
            "status": new.status,
            "updated_at": new.recorded_at,
        }
        if next_.mrn is not None:
            values["mrn"] = next_.mrn
        if next_.occurred_at is not None:
            values["occurred_at"] = next_.occurred_at
        if next_.identity is not None:
            values.update(_identity_values(next_.identity))
        moved = self.conn.execute(
            r.update().where(r.c.id == record_id, r.c.current_version == expected).values(**values)
        ).rowcount
        if moved != 1:
            return False
        self.conn.execute(orm.record_versions.insert().values(_version_values(record_id, new)))
        return True

    def history(self, record_id: UUID) -> list[Version]:
        v = orm.record_versions
        rows = self.conn.execute(
            sa.select(v).where(v.c.record_id == record_id).order_by(v.c.version)
        )
        return [_version(row) for row in rows]

    def mrn_owner(self, mrn: str) -> UUID | None:
        r = orm.records
        found = self.conn.execute(sa.select(r.c.id).where(r.c.mrn == mrn)).scalar()
        return cast(UUID | None, found)

    def near(self, kind: Kind, patient_id: UUID, start: datetime, end: datetime) -> list[Record]:
        """Active records of ``kind`` of one patient whose clinical time is in [start, end]."""
        r = orm.records
        rows = self.conn.execute(
            self._select()
            .where(
                r.c.kind == kind,
                r.c.patient_id == patient_id,
                r.c.status == "active",
                r.c.occurred_at >= start,
                r.c.occurred_at <= end,
            )
            .order_by(r.c.occurred_at, r.c.id)
        )
        return [self._record(row) for row in rows]

    def page(self, query: RecordQuery, window: Window) -> tuple[list[Record], int]:
        r = orm.records
        where: list[sa.ColumnElement[bool]] = [r.c.kind == query.kind, *_search_terms(query.search)]
        if query.parent_id is not None:
            where.append(r.c.parent_id == query.parent_id)
        if query.mrn is not None:
            where.append(r.c.mrn == query.mrn)
        if not query.include_retracted:
            where.append(r.c.status == "active")
        total = self.conn.execute(sa.select(sa.func.count()).select_from(r).where(*where)).scalar()
        rows = self.conn.execute(
            self._select()
            .where(*where)
            .order_by(r.c.created_at, r.c.id)
            .limit(window.limit)
            .offset(window.offset)
        )
        return [self._record(row) for row in rows], int(total or 0)

    def add_addendum(self, addendum: Addendum) -> None:
        values = {k: v for k, v in asdict(addendum).items() if k != "id"}
        self.conn.execute(orm.record_addenda.insert().values(**values))

    def addenda(self, record_id: UUID) -> list[Addendum]:
        a = orm.record_addenda
        rows = self.conn.execute(
            sa.select(a).where(a.c.record_id == record_id).order_by(a.c.written_at, a.c.id)
        )
        return [Addendum(**row._mapping) for row in rows]


def _identity_values(identity: PatientIndex | None) -> dict[str, Any]:
    if identity is None:
        return {}
    return {
        "family_name": identity.family_name,
        "given_name": identity.given_name,
        "birth_date": identity.birth_date,
        "name_key": identity.name_key,
    }


def _search_terms(search: PatientSearch | None) -> list[sa.ColumnElement[bool]]:
    """Patient search (migration 0006 columns): names word by word on the folded key."""
    if search is None:
        return []
    r = orm.records
    terms: list[sa.ColumnElement[bool]] = []
    if search.mrn is not None:
        terms.append(r.c.mrn == search.mrn)
    if search.birth_date is not None:
        terms.append(r.c.birth_date == search.birth_date)
    terms += [r.c.name_key.contains(w, autoescape=True) for w in search_key(search.name).split()]
    if search.text:
        words = search_key(search.text).split()
        by_name = sa.and_(*(r.c.name_key.contains(w, autoescape=True) for w in words))
        by_mrn = sa.func.lower(r.c.mrn).contains(search.text.strip().lower(), autoescape=True)
        terms.append(sa.or_(by_mrn, by_name) if words else by_mrn)
    return terms


def _user(row: Any) -> User:
    pending = row.reset_digest is not None
    return _from_row(User, row, role=cast(Role, row.role), reset_pending=pending)


class SqlUsers:
    """Users and their credentials (password hashes, API-key and session digests)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def add(self, user: User) -> None:
        self.conn.execute(orm.users.insert().values(_to_row(orm.users, user)))

    def get(self, user_id: UUID) -> User | None:
        row = self.conn.execute(sa.select(orm.users).where(orm.users.c.id == user_id)).first()
        return _user(row) if row else None

    def by_username(self, username: str) -> User | None:
        u = orm.users
        row = self.conn.execute(sa.select(u).where(u.c.username == username)).first()
        return _user(row) if row else None

    def count(self) -> int:
        return int(
            self.conn.execute(sa.select(sa.func.count()).select_from(orm.users)).scalar() or 0
        )

    def page(self, window: Window) -> tuple[list[User], int]:
        u = orm.users
        total = self.count()
        rows = self.conn.execute(
            sa.select(u).order_by(u.c.username).limit(window.limit).offset(window.offset)
        )
        return [_user(row) for row in rows], total

    def update(self, user_id: UUID, **values: Any) -> None:
        allowed = {
            "role",
            "active",
            "password_hash",
            "token_version",
            "reset_digest",
            "reset_expires_at",
            "failed_logins",
            "locked_until",
        }
        assert set(values) <= allowed, f"cannot update {set(values) - allowed}"
        self.conn.execute(orm.users.update().where(orm.users.c.id == user_id).values(**values))

    def bump_token_version(self, user_id: UUID) -> None:
        """End every session and JWT the user holds (security, migration 0003)."""
        u = orm.users
        self.conn.execute(
            u.update().where(u.c.id == user_id).values(token_version=u.c.token_version + 1)
        )

    def by_reset_digest(self, digest: str, now: datetime) -> User | None:
        u = orm.users
        row = self.conn.execute(
            sa.select(u).where(u.c.reset_digest == digest, u.c.reset_expires_at > now)
        ).first()
        return _user(row) if row else None

    def dev_only_users(self) -> list[str]:
        u = orm.users
        rows = self.conn.execute(
            sa.select(u.c.username).where(u.c.dev_only.is_(True), u.c.active.is_(True))
        )
        return [str(r[0]) for r in rows]

    def active_admins(self) -> int:
        u = orm.users
        found = self.conn.execute(
            sa.select(sa.func.count())
            .select_from(u)
            .where(u.c.role == "admin", u.c.active.is_(True))
        ).scalar()
        return int(found or 0)

    # API keys ------------------------------------------------------------------
    def add_api_key(self, key: ApiKey, digest: str) -> None:
        row = _to_row(orm.api_keys, key, digest=digest, revoked_at=None)
        self.conn.execute(orm.api_keys.insert().values(row))

    def api_key_by_digest(self, digest: str) -> ApiKey | None:
        k = orm.api_keys
        row = self.conn.execute(sa.select(k).where(k.c.digest == digest)).first()
        return _from_row(ApiKey, row) if row else None

    def api_keys(self, user_id: UUID) -> list[ApiKey]:
        k = orm.api_keys
        rows = self.conn.execute(
            sa.select(k).where(k.c.user_id == user_id).order_by(k.c.created_at)
        )
        return [_from_row(ApiKey, row) for row in rows]

    def revoke_api_key(self, user_id: UUID, key_id: UUID, at: datetime) -> bool:
        k = orm.api_keys
        done = self.conn.execute(
            k.update()
            .where(k.c.id == key_id, k.c.user_id == user_id, k.c.revoked_at.is_(None))
            .values(revoked_at=at)
        ).rowcount
        return bool(done == 1)

    # Browser sessions ----------------------------------------------------------
    def add_session(
        self,
        session_id: UUID,
        user_id: UUID,
        digest: str,
        at: datetime,
        expires: datetime,
        token_version: int = 0,
    ) -> None:
        self.conn.execute(
            orm.web_sessions.insert().values(
                id=session_id,
                user_id=user_id,
                digest=digest,
                created_at=at,
                expires_at=expires,
                revoked_at=None,
                token_version=token_version,
                last_seen_at=at,
            )
        )

    def session_by_digest(self, digest: str, now: datetime) -> UUID | None:
        found = self.live_session(digest, now)
        return found[0] if found else None

    def live_session(self, digest: str, now: datetime) -> tuple[UUID, int, datetime] | None:
        """(user id, token version, last seen) of an unrevoked, unexpired session."""
        s = orm.web_sessions
        row = self.conn.execute(
            sa.select(s.c.user_id, s.c.token_version, s.c.last_seen_at, s.c.created_at).where(
                s.c.digest == digest, s.c.revoked_at.is_(None), s.c.expires_at > now
            )
        ).first()
        if row is None:
            return None
        return row.user_id, row.token_version, row.last_seen_at or row.created_at

    def touch_session(self, digest: str, now: datetime) -> None:
        s = orm.web_sessions
        self.conn.execute(s.update().where(s.c.digest == digest).values(last_seen_at=now))

    def revoke_session(self, digest: str, at: datetime) -> None:
        s = orm.web_sessions
        self.conn.execute(
            s.update().where(s.c.digest == digest, s.c.revoked_at.is_(None)).values(revoked_at=at)
        )


class SqlAudit:
    """The append-only audit trail."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def add(self, event: AuditEvent) -> None:
        """Append ``event`` to the hash chain (see :mod:`triggerpath.adapters.audit_chain`)."""
        audit_chain.append(self.conn, event)

    def page(self, query: AuditQuery, window: Window) -> tuple[list[AuditEvent], int]:
        a = orm.audit_events
        where: list[sa.ColumnElement[bool]] = []
        if query.patient_id is not None:
            where.append(a.c.patient_id == query.patient_id)
        if query.actor is not None:
            where.append(a.c.actor == query.actor)
        if query.action is not None:
            if query.action.endswith("*"):
                where.append(a.c.action.startswith(query.action[:-1], autoescape=True))
            else:
                where.append(a.c.action == query.action)
        if query.outcome is not None:
            where.append(a.c.outcome == query.outcome)
        if query.request_id is not None:
            where.append(a.c.request_id == query.request_id)
        if query.since is not None:
            where.append(a.c.at >= query.since)
        if query.until is not None:
            where.append(a.c.at < query.until)
        if query.after_id is not None:
            where.append(a.c.id > query.after_id)
        total = self.conn.execute(sa.select(sa.func.count()).select_from(a).where(*where)).scalar()
        rows = self.conn.execute(
            sa.select(a).where(*where).order_by(a.c.id).limit(window.limit).offset(window.offset)
        )
        events = [
            _from_row(AuditEvent, row, patient_ids=tuple(UUID(p) for p in row.patient_ids or ()))
            for row in rows
        ]
        return events, int(total or 0)

    def last_id(self) -> int:
        found = self.conn.execute(sa.select(sa.func.max(orm.audit_events.c.id))).scalar()
        return int(found or 0)


class SqlPolicy:
    """Versions of the clinic policy (append-only, like clinical records)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def current(self) -> tuple[int, dict[str, Any], datetime, str] | None:
        p = orm.policy_versions
        row = self.conn.execute(sa.select(p).order_by(p.c.version.desc()).limit(1)).first()
        if row is None:
            return None
        return row.version, dict(row.data), row.recorded_at, row.recorded_by

    def add(self, version: int, data: dict[str, Any], at: datetime, by: str, reason: str) -> None:
        """Insert version ``version``; a concurrent writer of the same number fails on the key."""
        self.conn.execute(
            orm.policy_versions.insert().values(
                version=version, data=data, recorded_at=at, recorded_by=by, reason=reason
            )
        )


__all__: Sequence[str] = ("SqlAudit", "SqlPolicy", "SqlRecords", "SqlUsers")
