"""Plain types the services and repositories exchange (no ORM, no HTTP).

A clinical *record* (patient, episode, assessment, plan, session, outcome, document)
is a chain of immutable *versions*: a correction, a signature or an
entered-in-error mark each append a version with who, when and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, get_args
from uuid import UUID

Role = Literal["clinician", "nurse", "viewer", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)

Kind = Literal["patient", "episode", "assessment", "plan", "session", "outcome", "document"]
KINDS: tuple[Kind, ...] = get_args(Kind)

#: Which kind each record hangs under (the patient is the root).
PARENT_KIND: dict[Kind, Kind | None] = {
    "patient": None,
    "episode": "patient",
    "assessment": "episode",
    "plan": "assessment",
    "session": "episode",
    "outcome": "episode",
    "document": "patient",
}
#: The field holding a kind's clinical time, kept in the index row (``occurred_at``) so the
#: 24-hour dose ledger reads only the sessions near a time, not every session of a patient.
OCCURRED_AT: dict[Kind, str] = {"session": "performed_at"}
#: Records that are signed (assessments and plans by their clinician, a session's procedure
#: note by its performer); once signed their content is immutable and only addenda are added.
SIGNABLE: frozenset[Kind] = frozenset({"assessment", "plan", "session"})

Status = Literal["active", "entered_in_error"]

Outcome = Literal["success", "denied", "not_found", "conflict", "invalid", "error"]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: an authenticated user (or the local operator on the CLI)."""

    username: str
    role: Role
    user_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class User:
    id: UUID
    username: str
    role: Role
    active: bool
    created_at: datetime
    created_by: str | None
    password_hash: str | None = field(default=None, repr=False)
    #: credentials issued under an older version are refused (see services.auth)
    token_version: int = 0
    #: an admin reset is pending: the account cannot act until its user sets a password
    reset_pending: bool = False
    failed_logins: int = 0
    locked_until: datetime | None = None
    #: made by development tooling (demo data, the development admin): refused in production
    dev_only: bool = False


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: UUID
    user_id: UUID
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Version:
    """One immutable version of a record."""

    version: int
    status: Status
    data: dict[str, Any]
    recorded_at: datetime
    recorded_by: str
    reason: str | None
    signed_at: datetime | None = None
    signed_by: str | None = None


@dataclass(frozen=True, slots=True)
class Addendum:
    """Text added to a signed record (never changed): who, in which role, when, on which
    version."""

    record_id: UUID
    record_version: int
    text: str
    author: str
    role: str
    written_at: datetime
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """A record as it stands: its identity and its current version."""

    id: UUID
    kind: Kind
    patient_id: UUID
    parent_id: UUID | None
    created_at: datetime
    created_by: str
    current: Version

    @property
    def version(self) -> int:
        return self.current.version

    @property
    def status(self) -> Status:
        return self.current.status

    @property
    def signed(self) -> bool:
        return self.current.signed_at is not None


@dataclass(frozen=True, slots=True)
class PatientIndex:
    """A patient's identity as the index row keeps it for search (migration 0006); the
    record's versions keep the same values in their content."""

    family_name: str | None
    given_name: str | None
    birth_date: date | None
    #: names folded for search (domain.identity.search_key)
    name_key: str | None


@dataclass(frozen=True, slots=True)
class PatientSearch:
    """Find patients: every given criterion must hold (names: every word, anywhere in the
    family or given names, case and accents ignored)."""

    name: str | None = None
    birth_date: date | None = None
    mrn: str | None = None
    #: the web search box: an MRN (or part of one) or the words of a name
    text: str | None = None


@dataclass(frozen=True, slots=True)
class NewRecord:
    id: UUID
    kind: Kind
    patient_id: UUID
    parent_id: UUID | None
    mrn: str | None
    first: Version
    occurred_at: datetime | None = None
    identity: PatientIndex | None = None


@dataclass(frozen=True, slots=True)
class RecordIndex:
    """What a record's index row keeps beside its content: a patient's MRN and identity."""

    mrn: str | None = None
    identity: PatientIndex | None = None


NO_INDEX = RecordIndex()


@dataclass(frozen=True, slots=True)
class NextVersion:
    """A version to put on top of ``expected`` (the index row's MRN and clinical time with it)."""

    record_id: UUID
    expected: int
    new: Version
    mrn: str | None = None
    occurred_at: datetime | None = None
    identity: PatientIndex | None = None


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """Which records to list: one kind, under one parent or by exact MRN."""

    kind: Kind
    parent_id: UUID | None = None
    mrn: str | None = None
    include_retracted: bool = False
    search: PatientSearch | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    at: datetime
    request_id: str
    actor: str | None
    role: str | None
    action: str
    outcome: Outcome
    patient_id: UUID | None = None
    record_id: UUID | None = None
    id: int | None = None
    #: the patients a list or search returned (ids only)
    patient_ids: tuple[UUID, ...] = ()


@dataclass(frozen=True, slots=True)
class AuditQuery:
    patient_id: UUID | None = None
    actor: str | None = None
    action: str | None = None
    outcome: str | None = None
    request_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_id: int | None = None


@dataclass(frozen=True, slots=True)
class Window:
    """Pagination: ``limit`` items after skipping ``offset``."""

    limit: int = 50
    offset: int = 0
