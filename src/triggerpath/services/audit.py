"""The audit trail: every read or write of patient data leaves exactly one event.

An event says who (username and role), when, which action, which patient and record,
the outcome (``success``, ``denied``, ``not_found``, ``conflict``, ``invalid``,
``error``) and the request id. On success the event is written in the same transaction
as the work, so there is no change without its event; on failure the work is rolled
back and the event is written on its own. The table is append-only (database
triggers refuse UPDATE and DELETE).

Events hold identifiers only (patient and record ids), never clinical content.

Use :class:`Call` around each use case::

    call = Call(uow_factory, actor, "patient.read", request_id, now)
    call.authorise()                     # records a "denied" event and raises Forbidden
    patient = call.run(lambda uow, note: records.get(uow, note, "patient", pid))
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID

import sqlalchemy as sa

from triggerpath.errors import Conflict, InvalidInput, NotFound, TriggerPathError
from triggerpath.services.auth import Forbidden, Throttled, Unauthenticated, authorise
from triggerpath.services.model import Actor, AuditEvent, AuditQuery, Outcome, Window
from triggerpath.services.uow import UnitOfWork, UowFactory

T = TypeVar("T")
_log = logging.getLogger(__name__)
#: Outcomes recorded while serving the current request (see :func:`begin_request`).
_recorded: ContextVar[list[str] | None] = ContextVar("triggerpath_audit_recorded", default=None)


def begin_request() -> list[str]:
    """Start tracking the events this request records; the HTTP edge audits the rest.

    The list is shared with worker threads (context variables are copied into them, the
    list itself is the same object), so an event recorded by a use case is seen here.
    """
    recorded: list[str] = []
    _recorded.set(recorded)
    return recorded


def _mark(outcome: str) -> None:
    recorded = _recorded.get()
    if recorded is not None:
        recorded.append(outcome)


def utcnow() -> datetime:
    return datetime.now(UTC)


def record(uow_factory: UowFactory, event: AuditEvent) -> None:
    """Write one event on its own (sign-in, administration outside a :class:`Call`)."""
    with uow_factory() as uow:
        uow.audit.add(event)
        uow.commit()
    _mark(event.outcome)


@dataclass
class AuditNote:
    """What a use case touched, filled in as it learns it (for the event)."""

    patient_id: UUID | None = None
    record_id: UUID | None = None
    qualifier: str | None = None  # e.g. "dose_exceeded": the event's action says so
    #: what a list or search returned
    patient_ids: tuple[UUID, ...] = ()

    def flag(self, qualifier: str) -> None:
        """Qualify the event's action (``session.create.dose_exceeded``) for a safety event."""
        self.qualifier = qualifier

    def returned(self, patient_ids: list[UUID]) -> None:
        self.patient_ids = tuple(dict.fromkeys(patient_ids))

    def touch(self, patient_id: UUID | None, record_id: UUID | None = None) -> None:
        if patient_id is not None:
            self.patient_id = patient_id
        if record_id is not None:
            self.record_id = record_id


def outcome_of(exc: BaseException) -> Outcome:
    if isinstance(exc, Forbidden | Unauthenticated | Throttled):
        return "denied"
    if isinstance(exc, NotFound):
        return "not_found"
    if isinstance(exc, Conflict):
        return "conflict"
    if isinstance(exc, InvalidInput):
        return "invalid"
    return "error"


@dataclass
class Call:
    """One audited action by one actor within one request."""

    uow_factory: UowFactory
    actor: Actor
    action: str
    request_id: str
    now: datetime
    note: AuditNote = field(default_factory=AuditNote)
    recorded: bool = False

    def event(self, outcome: Outcome) -> AuditEvent:
        return AuditEvent(
            at=self.now,
            request_id=self.request_id,
            actor=self.actor.username,
            role=self.actor.role,
            action=f"{self.action}.{self.note.qualifier}" if self.note.qualifier else self.action,
            outcome=outcome,
            patient_id=self.note.patient_id,
            record_id=self.note.record_id,
            patient_ids=self.note.patient_ids,
        )

    def _record_alone(self, outcome: Outcome) -> None:
        with self.uow_factory() as uow:
            uow.audit.add(self.event(outcome))
            uow.commit()
        self.recorded = True
        _mark(outcome)

    def refuse(self, exc: BaseException) -> None:
        """Leave the event of a call refused before its work ran (outcome from ``exc``)."""
        assert not self.recorded, "one call, one event"
        self._record_alone(outcome_of(exc))

    def authorise(self) -> None:
        try:
            authorise(self.actor, self.action)
        except Forbidden:
            self._record_alone("denied")
            raise

    def run(self, fn: Callable[[UnitOfWork, AuditNote], T]) -> T:
        """Run ``fn`` in a unit of work and leave exactly one audit event, whatever happens."""
        assert not self.recorded, "one call, one event"
        self.authorise()
        failure: BaseException
        try:
            with self.uow_factory() as uow:
                result = fn(uow, self.note)
                uow.audit.add(self.event("success"))
                uow.commit()
                self.recorded = True
                _mark("success")
                return result
        except sa.exc.IntegrityError:
            # a unique key or the version key caught a concurrent writer
            failure = Conflict("the record changed concurrently; reload it and try again")
        except TriggerPathError as exc:
            failure = exc
        except Exception:
            try:
                self._record_alone("error")
            except Exception:  # the database itself may be what failed
                _log.warning("audit event not written for a failed %s request", self.action)
            raise
        self._record_alone(outcome_of(failure))
        raise failure


def list_events(
    uow_factory: UowFactory, query: AuditQuery, window: Window
) -> tuple[list[AuditEvent], int]:
    with uow_factory() as uow:
        return uow.audit.page(query, window)
