"""Use cases common to every kind of clinical record.

Records are append-only: ``create`` writes version 1; ``correct``, ``sign`` and
``retract`` each append a version naming who, when and (for corrections and
retractions) why. Each takes the version the caller read; if the record has moved on
since, nothing is written and :class:`VersionConflict` says which version is current,
so the second of two clinicians editing the same record loses nothing silently.

Signed records (assessments, plans, sessions' procedure notes) are immutable: signing
needs the signer's re-entered password (:class:`~triggerpath.services.auth.Reauthenticated`,
see :mod:`triggerpath.services.signatures`); afterwards the record takes only addenda
(:func:`add_addendum`, an append-only table) and can still be voided (marked entered in
error with a reason), which keeps its content and signature.

The safety kernel (:mod:`triggerpath.services.kernel`) is asked before every change that
has a rule: who may retract, whether a plan may be signed, who may attest a session.
Correcting or retracting an assessment marks its plans stale (a new version of each plan,
so the history says when and why); a stale plan cannot be signed until it is re-planned.

``if_match`` (an HTTP ``If-Match`` value: ``"3"``, ``W/"3"`` or ``*``) is checked against
the current version before anything else; a mismatch raises :class:`PreconditionFailed`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from triggerpath.errors import Conflict, NotFound, PreconditionFailed
from triggerpath.errors import VersionConflict as VersionConflict  # raised here; home: errors
from triggerpath.knowledge.loader import Knowledge
from triggerpath.services import kernel
from triggerpath.services.audit import AuditNote
from triggerpath.services.auth import Forbidden, Reauthenticated
from triggerpath.services.model import (
    NO_INDEX,
    OCCURRED_AT,
    PARENT_KIND,
    SIGNABLE,
    Actor,
    Addendum,
    Kind,
    NewRecord,
    NextVersion,
    PatientSearch,
    Record,
    RecordIndex,
    RecordQuery,
    Version,
    Window,
)
from triggerpath.services.uow import UnitOfWork


def etag(record: Record) -> str:
    """The record's HTTP entity tag: its version, quoted."""
    return f'"{record.version}"'


def occurred_at(kind: Kind, data: dict[str, Any]) -> datetime | None:
    """The clinical time of a record's content (a session's ``performed_at``), if it has one."""
    key = OCCURRED_AT.get(kind)
    value = data.get(key) if key else None
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def check_if_match(record: Record, if_match: str | None) -> None:
    """Refuse with :class:`PreconditionFailed` unless ``if_match`` names the current version."""
    if if_match is None:
        return
    tags = [t.strip().removeprefix("W/").strip('"') for t in if_match.split(",")]
    if "*" in tags or str(record.version) in tags:
        return
    raise PreconditionFailed(record.kind, if_match, record.version)


def get(uow: UnitOfWork, note: AuditNote, kind: Kind, record_id: UUID) -> Record:
    """The record as it stands, or NotFound (also when the id is of another kind)."""
    note.touch(None, record_id)
    record = uow.records.get(record_id)
    if record is None or record.kind != kind:
        raise NotFound(f"no {kind} {record_id}")
    note.touch(record.patient_id, record.id)
    return record


def _parent(uow: UnitOfWork, note: AuditNote, kind: Kind, parent_id: UUID | None) -> Record | None:
    parent_kind = PARENT_KIND[kind]
    if parent_kind is None:
        return None
    assert parent_id is not None, f"a {kind} needs its {parent_kind}"
    parent = get(uow, note, parent_kind, parent_id)
    if parent.status != "active":
        raise Conflict(f"{parent_kind} {parent_id} was entered in error; nothing can be added")
    return parent


@dataclass(frozen=True)
class Write:
    """One audited write: its unit of work and audit note, who writes, when, with what.

    ``kb`` is the knowledge the clinical rules use (default: the installed one) and
    ``today`` the clinic's calendar date (the engine's and planner's ``as_of``).
    """

    uow: UnitOfWork
    note: AuditNote
    actor: Actor
    now: datetime
    kb: Knowledge | None = None
    today: date | None = None

    def context(self, *, clinic_day: bool = False) -> kernel.Context:
        """The safety kernel's context; ``clinic_day`` dates it ``today``, not ``now``."""
        today = self.today if clinic_day else None
        return kernel.context(self.uow, self.actor, self.kb, self.now, today)


@dataclass(frozen=True)
class Change:
    """What a caller sends with a change: the version it read, why, and its ``If-Match``."""

    expected: int
    reason: str = ""
    if_match: str | None = None


def create(
    w: Write,
    kind: Kind,
    data: dict[str, Any],
    parent_id: UUID | None = None,
    index: RecordIndex = NO_INDEX,
) -> Record:
    kernel.admit_text(data)  # the one text rule, whichever use case wrote ``data``
    parent = _parent(w.uow, w.note, kind, parent_id)
    record_id = uuid4()
    patient_id = parent.patient_id if parent else record_id
    first = Version(1, "active", data, recorded_at=w.now, recorded_by=w.actor.username, reason=None)
    when = occurred_at(kind, data)
    new = NewRecord(record_id, kind, patient_id, parent_id, index.mrn, first, when, index.identity)
    w.uow.records.add(new)
    w.note.touch(patient_id, record_id)
    return Record(record_id, kind, patient_id, parent_id, w.now, w.actor.username, first)


def _append(
    uow: UnitOfWork, record: Record, expected: int, new: Version, index: RecordIndex = NO_INDEX
) -> Record:
    if expected != record.version:
        raise VersionConflict(record.kind, expected, record.version)
    when = occurred_at(record.kind, new.data)
    if not uow.records.append(
        NextVersion(record.id, expected, new, index.mrn, when, index.identity)
    ):
        # read the same version as a concurrent writer, who committed first
        current = uow.records.get(record.id)
        raise VersionConflict(record.kind, expected, current.version if current else expected)
    return replace(record, current=new)


def _next(cur: Version, w: Write, reason: str, **changes: Any) -> Version:
    """The version after ``cur``: numbered next, recorded by the writer, now, for ``reason``.

    Correct, sign, retract, attest and mark-stale differ only in ``changes``; the rest of
    a new version's bookkeeping is this one rule.
    """
    return replace(
        cur,
        version=cur.version + 1,
        recorded_at=w.now,
        recorded_by=w.actor.username,
        reason=reason,
        **changes,
    )


def current(w: Write, kind: Kind, record_id: UUID, change: Change) -> Record:
    """The record to change: found, at the ``If-Match`` version, not entered in error."""
    record = get(w.uow, w.note, kind, record_id)
    check_if_match(record, change.if_match)
    if record.status != "active":
        raise Conflict(f"{record.kind} {record.id} was entered in error; it cannot change")
    return record


def correct(
    w: Write,
    kind: Kind,
    record_id: UUID,
    change: Change,
    data: dict[str, Any],
    index: RecordIndex = NO_INDEX,
) -> Record:
    kernel.admit_text(data)
    record = current(w, kind, record_id, change)
    if record.signed:
        raise Conflict(
            f"{kind} {record_id} is signed and cannot change; add an addendum, or void it "
            f"(entered in error) and record a new {kind}"
        )
    new = _next(record.current, w, change.reason, status="active", data=data)
    updated = _append(w.uow, record, change.expected, new, index)
    if kind == "assessment":
        mark_plans_stale(w, record, f"assessment corrected on {w.now:%Y-%m-%d}")
    return updated


#: How long a re-entered password stands for a signature (it is asked for in the same request).
PROOF_SECONDS = 300


def sign(w: Write, kind: Kind, record_id: UUID, change: Change, proof: Reauthenticated) -> Record:
    """Sign the record as ``w.actor``, who re-entered their password (``proof``)."""
    assert kind in SIGNABLE
    if proof.username != w.actor.username or w.now - proof.at > timedelta(seconds=PROOF_SECONDS):
        raise Forbidden("re-enter your password to sign")
    record = current(w, kind, record_id, change)
    if record.signed:
        raise Conflict(f"{kind} {record_id} is already signed")
    kernel.admit_signature(w.actor, record)
    new = _next(record.current, w, "signed", signed_at=w.now, signed_by=w.actor.username)
    return _append(w.uow, record, change.expected, new)


def add_addendum(w: Write, kind: Kind, record_id: UUID, text: str) -> Addendum:
    """Add text to a signed record (its content stays as signed)."""
    assert kind in SIGNABLE
    kernel.admit_text({"text": text})
    record = get(w.uow, w.note, kind, record_id)
    kernel.admit_addendum(w.actor, record)
    addendum = Addendum(record.id, record.version, text, w.actor.username, w.actor.role, w.now)
    w.uow.records.add_addendum(addendum)
    return addendum


def addenda(uow: UnitOfWork, note: AuditNote, kind: Kind, record_id: UUID) -> list[Addendum]:
    get(uow, note, kind, record_id)
    return uow.records.addenda(record_id)


def retract(w: Write, kind: Kind, record_id: UUID, change: Change) -> Record:
    record = current(w, kind, record_id, change)
    kernel.admit_retraction(w.actor, record)
    new = _next(record.current, w, change.reason, status="entered_in_error")
    retracted = _append(w.uow, record, change.expected, new)
    if kind == "assessment":
        mark_plans_stale(w, record, f"assessment entered in error on {w.now:%Y-%m-%d}")
    return retracted


def mark_plans_stale(w: Write, assessment: Record, why: str) -> None:
    """Append a 'stale' version to each active plan of ``assessment`` (signed ones too).

    The content stays as planned; only ``stale`` and ``stale_reason`` are added, so the
    history shows when the plan stopped matching its assessment. A signed plan keeps its
    signature: it stays a record of what was signed, but it no longer stands.
    """
    plans, _ = w.uow.records.page(RecordQuery("plan", parent_id=assessment.id), Window(limit=1000))
    for plan in plans:
        if plan.current.data.get("stale"):
            continue
        cur = plan.current
        data = {**cur.data, "stale": True, "stale_reason": why}
        new = _next(cur, w, f"marked stale: {why}; re-plan before signing", data=data)
        _append(w.uow, plan, plan.version, new)


def attest(w: Write, record_id: UUID, change: Change) -> Record:
    """The performer confirms a session someone else recorded for them."""
    record = current(w, "session", record_id, change)
    kernel.admit_attestation(w.actor, record)
    cur = record.current
    data = {
        **cur.data,
        "attestation": "attested",
        "attested_by": w.actor.username,
        "attested_at": w.now.isoformat(),
    }
    new = _next(cur, w, "attested by the performer", data=data)
    return _append(w.uow, record, change.expected, new)


def history(
    uow: UnitOfWork, note: AuditNote, kind: Kind, record_id: UUID
) -> tuple[Record, list[Version]]:
    record = get(uow, note, kind, record_id)
    return record, uow.records.history(record_id)


def list_(
    uow: UnitOfWork,
    note: AuditNote,
    kind: Kind,
    window: Window,
    *,
    parent_id: UUID | None = None,
    mrn: str | None = None,
    include_retracted: bool = False,
    search: PatientSearch | None = None,
) -> tuple[list[Record], int]:
    """A page of records of one kind (under one parent, or by exact MRN); the parent must exist."""
    parent_kind = PARENT_KIND[kind]
    if parent_kind is not None and parent_id is not None:
        get(uow, note, parent_kind, parent_id)
    query = RecordQuery(kind, parent_id, mrn, include_retracted, search)
    items, total = uow.records.page(query, window)
    if (mrn is not None or search is not None) and len(items) == 1:
        note.touch(items[0].patient_id, items[0].id)
    note.returned([r.patient_id for r in items])  # list/search events name who was returned
    return items, total
