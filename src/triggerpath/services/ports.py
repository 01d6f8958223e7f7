"""Ports: what the services need from storage, as ``typing.Protocol`` types.

The services are written against these protocols only; the SQLAlchemy classes in
``triggerpath.adapters`` implement them and the composition root
(``triggerpath.bootstrap``) wires one to the other. So a service never imports an
adapter, and a test can hand a service a fake that has the same methods::

    entrypoints ──> bootstrap ──> adapters.unit_of_work.SqlUnitOfWork
         │                              │ implements
         └──────> services ──uses──> ports.UnitOfWork (records, users, audit, policy)

Each protocol lists exactly the methods the services and entry points call; a new
storage need starts here, then gets its adapter method.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol
from uuid import UUID

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


class Records(Protocol):
    """Clinical records as chains of immutable versions."""

    def add(self, new: NewRecord) -> None: ...

    def get(self, record_id: UUID) -> Record | None: ...

    def append(self, next_: NextVersion) -> bool:
        """Put ``next_.new`` on top of version ``next_.expected``; False when someone got there
        first (nothing written)."""
        ...

    def history(self, record_id: UUID) -> list[Version]: ...

    def mrn_owner(self, mrn: str) -> UUID | None: ...

    def near(self, kind: Kind, patient_id: UUID, start: datetime, end: datetime) -> list[Record]:
        """Active records of ``kind`` of one patient whose clinical time lies in [start, end]
        (the 24-hour dose ledger)."""
        ...

    def page(self, query: RecordQuery, window: Window) -> tuple[list[Record], int]: ...

    def add_addendum(self, addendum: Addendum) -> None:
        """Keep text added to a signed record (append-only)."""
        ...

    def addenda(self, record_id: UUID) -> list[Addendum]:
        """A record's addenda, oldest first."""
        ...


class Users(Protocol):
    """Accounts, their API keys and web sessions."""

    def add(self, user: User) -> None: ...

    def get(self, user_id: UUID) -> User | None: ...

    def by_username(self, username: str) -> User | None: ...

    def count(self) -> int: ...

    def page(self, window: Window) -> tuple[list[User], int]: ...

    def update(self, user_id: UUID, **values: Any) -> None: ...

    def add_api_key(self, key: ApiKey, digest: str) -> None: ...

    def api_key_by_digest(self, digest: str) -> ApiKey | None: ...

    def api_keys(self, user_id: UUID) -> list[ApiKey]: ...

    def revoke_api_key(self, user_id: UUID, key_id: UUID, at: datetime) -> bool: ...

    def add_session(
        self,
        session_id: UUID,
        user_id: UUID,
        digest: str,
        at: datetime,
        expires: datetime,
        token_version: int = 0,
    ) -> None: ...

    def session_by_digest(self, digest: str, now: datetime) -> UUID | None: ...

    def revoke_session(self, digest: str, at: datetime) -> None: ...

    # security (issue 14): token versions, idle sessions, resets, separation of duties
    def live_session(self, digest: str, now: datetime) -> tuple[UUID, int, datetime] | None: ...

    def touch_session(self, digest: str, now: datetime) -> None: ...

    def bump_token_version(self, user_id: UUID) -> None: ...

    def by_reset_digest(self, digest: str, now: datetime) -> User | None: ...

    def dev_only_users(self) -> list[str]: ...

    def active_admins(self) -> int: ...


class AuditLog(Protocol):
    """The append-only audit trail."""

    def add(self, event: AuditEvent) -> None: ...

    def page(self, query: AuditQuery, window: Window) -> tuple[list[AuditEvent], int]: ...

    def last_id(self) -> int: ...


class PolicyVersions(Protocol):
    """The site policy's versions (the newest is in force)."""

    def current(self) -> tuple[int, dict[str, Any], datetime, str] | None: ...

    def add(
        self, version: int, data: dict[str, Any], at: datetime, by: str, reason: str
    ) -> None: ...


class UnitOfWork(Protocol):
    """One transaction and the repositories that work inside it.

    ::

        with uow_factory() as uow:
            uow.records.add(...)
            uow.audit.add(...)
            uow.commit()          # nothing is kept unless this runs

    Leaving the block without ``commit()`` (an exception, an early return) rolls back.
    """

    @property
    def records(self) -> Records: ...

    @property
    def users(self) -> Users: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def policy(self) -> PolicyVersions: ...

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


#: A fresh unit of work per call; what entry points hand to the services.
UowFactory = Callable[[], UnitOfWork]
