"""The services run on their ports alone: an in-memory unit of work, no database.

``services/ports.py`` declares what the services need from storage; these fakes implement
it in a few lines (mypy --strict checks that they satisfy the protocols), and the record and
audit use cases run on them unchanged. The SQL adapter is tested against PostgreSQL in
``tests/service/``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, NoReturn
from uuid import UUID

import pytest

from triggerpath.errors import NotFound
from triggerpath.services import records
from triggerpath.services.audit import AuditNote, Call
from triggerpath.services.model import (
    Addendum,
    ApiKey,
    AuditEvent,
    AuditQuery,
    Kind,
    NewRecord,
    NextVersion,
    Record,
    RecordQuery,
    User,
    Version,
    Window,
)
from triggerpath.services.ports import UnitOfWork, UowFactory
from triggerpath.services.records import VersionConflict

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


class MemoryRecords:
    def __init__(self) -> None:
        self.rows: dict[UUID, tuple[NewRecord, list[Version]]] = {}
        self.when: dict[UUID, datetime | None] = {}
        self.notes: list[Addendum] = []

    def add_addendum(self, addendum: Addendum) -> None:
        self.notes.append(addendum)

    def addenda(self, record_id: UUID) -> list[Addendum]:
        return [a for a in self.notes if a.record_id == record_id]

    def add(self, new: NewRecord) -> None:
        self.rows[new.id] = (new, [new.first])
        self.when[new.id] = new.occurred_at

    def get(self, record_id: UUID) -> Record | None:
        if record_id not in self.rows:
            return None
        new, versions = self.rows[record_id]
        first = versions[0]
        return Record(
            new.id,
            new.kind,
            new.patient_id,
            new.parent_id,
            first.recorded_at,
            first.recorded_by,
            versions[-1],
        )

    def append(self, next_: NextVersion) -> bool:
        versions = self.rows[next_.record_id][1]
        if versions[-1].version != next_.expected:
            return False
        versions.append(next_.new)
        if next_.occurred_at is not None:
            self.when[next_.record_id] = next_.occurred_at
        return True

    def history(self, record_id: UUID) -> list[Version]:
        return list(self.rows[record_id][1])

    def mrn_owner(self, mrn: str) -> UUID | None:
        return next((i for i, (n, _) in self.rows.items() if n.mrn == mrn), None)

    def near(self, kind: Kind, patient_id: UUID, start: datetime, end: datetime) -> list[Record]:
        found = [(self.get(i), self.when.get(i)) for i in self.rows]
        return [
            r
            for r, when in found
            if r is not None
            and r.kind == kind
            and r.patient_id == patient_id
            and r.current.status == "active"
            and when is not None
            and start <= when <= end
        ]

    def page(self, query: RecordQuery, window: Window) -> tuple[list[Record], int]:
        found = [r for i in self.rows if (r := self.get(i)) and r.kind == query.kind]
        return found[window.offset : window.offset + window.limit], len(found)


def _no() -> NoReturn:
    raise AssertionError("accounts are not part of the record use cases")


class NoUsers:
    """The record use cases never touch accounts; every method says so if called."""

    def add(self, user: User) -> None:
        _no()

    def get(self, user_id: UUID) -> User | None:
        _no()

    def by_username(self, username: str) -> User | None:
        _no()

    def count(self) -> int:
        _no()

    def page(self, window: Window) -> tuple[list[User], int]:
        _no()

    def update(self, user_id: UUID, **values: Any) -> None:
        _no()

    def add_api_key(self, key: ApiKey, digest: str) -> None:
        _no()

    def api_key_by_digest(self, digest: str) -> ApiKey | None:
        _no()

    def api_keys(self, user_id: UUID) -> list[ApiKey]:
        _no()

    def revoke_api_key(self, user_id: UUID, key_id: UUID, at: datetime) -> bool:
        _no()

    def add_session(
        self,
        session_id: UUID,
        user_id: UUID,
        digest: str,
        at: datetime,
        expires: datetime,
        token_version: int = 0,
    ) -> None:
        _no()

    def session_by_digest(self, digest: str, now: datetime) -> UUID | None:
        _no()

    def revoke_session(self, digest: str, at: datetime) -> None:
        _no()

    # security (issue 14)
    def live_session(self, digest: str, now: datetime) -> tuple[UUID, int, datetime] | None:
        _no()

    def touch_session(self, digest: str, now: datetime) -> None:
        _no()

    def bump_token_version(self, user_id: UUID) -> None:
        _no()

    def by_reset_digest(self, digest: str, now: datetime) -> User | None:
        _no()

    def dev_only_users(self) -> list[str]:
        _no()

    def active_admins(self) -> int:
        _no()


class MemoryAudit:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def add(self, event: AuditEvent) -> None:
        self.events.append(replace(event, id=len(self.events) + 1))

    def page(self, query: AuditQuery, window: Window) -> tuple[list[AuditEvent], int]:
        return self.events[window.offset : window.offset + window.limit], len(self.events)

    def last_id(self) -> int:
        return len(self.events)


class MemoryPolicy:
    def current(self) -> tuple[int, dict[str, Any], datetime, str] | None:
        return None

    def add(self, version: int, data: dict[str, Any], at: datetime, by: str, reason: str) -> None:
        raise AssertionError("policy is not part of this use case")


class MemoryStore:
    """What survives a transaction: the committed state shared by every unit of work."""

    def __init__(self) -> None:
        self.records = MemoryRecords()
        self.audit = MemoryAudit()


class MemoryUnitOfWork:
    """Writes go to the store only on commit (a copy is taken on entry)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.users = NoUsers()
        self.policy = MemoryPolicy()

    def __enter__(self) -> MemoryUnitOfWork:
        self.records = MemoryRecords()
        self.records.rows = {k: (n, list(v)) for k, (n, v) in self._store.records.rows.items()}
        self.audit = MemoryAudit()
        self.audit.events = list(self._store.audit.events)
        return self

    def commit(self) -> None:
        self._store.records, self._store.audit = self.records, self.audit

    def rollback(self) -> None:
        pass

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rollback()


def factory(store: MemoryStore) -> UowFactory:
    def make() -> UnitOfWork:  # mypy checks MemoryUnitOfWork against the port here
        return MemoryUnitOfWork(store)

    return make


def test_record_use_cases_run_on_the_port() -> None:
    from triggerpath.services.model import Actor

    store, actor = MemoryStore(), Actor("dr.a", "clinician")
    with factory(store)() as uow:
        w = records.Write(uow, AuditNote(), actor, NOW)
        patient = records.create(w, "patient", {"mrn": "1"})
        uow.commit()
    with factory(store)() as uow:
        w = records.Write(uow, AuditNote(), actor, NOW)
        fixed = records.correct(w, "patient", patient.id, records.Change(1, "typo"), {"mrn": "2"})
        with pytest.raises(VersionConflict):  # a second writer who read version 1 loses
            again = records.Change(1, "again")
            records.correct(w, "patient", patient.id, again, {"mrn": "3"})
        uow.commit()
    assert fixed.version == 2
    assert [v.data["mrn"] for v in store.records.history(patient.id)] == ["1", "2"]


def test_an_audited_call_leaves_one_event_and_nothing_else_on_failure() -> None:
    from triggerpath.services.model import Actor

    store, actor = MemoryStore(), Actor("dr.a", "clinician")
    missing = UUID(int=1)
    call = Call(factory(store), actor, "patient.read", "req-1", NOW)
    with pytest.raises(NotFound):
        call.run(lambda uow, note: records.get(uow, note, "patient", missing))
    assert [(e.action, e.outcome) for e in store.audit.events] == [("patient.read", "not_found")]
    assert store.records.rows == {}
