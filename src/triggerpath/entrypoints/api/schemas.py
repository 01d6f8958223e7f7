"""The API's response and request models (the request content models live in
:mod:`triggerpath.services.payloads`), and the translation of records into them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from triggerpath.domain.course import CourseReport
from triggerpath.domain.integrity import SafetyEvent
from triggerpath.domain.policy import Policy
from triggerpath.knowledge.loader import Knowledge
from triggerpath.services.clinical import Phase, episode_phase
from triggerpath.services.model import (
    ApiKey,
    AuditEvent,
    Kind,
    Record,
    Role,
    Status,
    User,
    Version,
    Window,
)
from triggerpath.services.payloads import (
    AssessmentIn,
    Correction,
    EpisodeData,
    OutcomeData,
    PatientData,
    Payload,
    PlanIn,
    SessionData,
    SessionIn,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Page(Out, Generic[T]):
    items: list[T]
    total: int = Field(description="items matching, over all pages")
    limit: int
    offset: int


def page_of(items: list[Any], total: int, window: Window) -> dict[str, Any]:
    """A ``Page`` body: one window's items, the total over all pages, and the window itself."""
    return {"items": items, "total": total, "limit": window.limit, "offset": window.offset}


class RecordMeta(Out):
    id: UUID
    kind: Kind
    patient_id: UUID
    parent_id: UUID | None
    version: int = Field(description="send it back to correct, sign or retract")
    status: Status
    recorded_at: datetime = Field(description="when this version was written")
    recorded_by: str
    reason: str | None = Field(description="why this version was written (not for version 1)")
    created_at: datetime
    created_by: str
    signed_at: datetime | None = None
    signed_by: str | None = None


class PatientPublic(RecordMeta):
    data: PatientData


class EpisodePublic(RecordMeta):
    data: EpisodeData
    phase: Phase | None = Field(description="acute / subacute / chronic today, from the onset")


class AssessmentSnapshot(Out):
    """A recorded assessment exactly as stored: read back as JSON, never re-validated, so
    records made under older knowledge or schema versions stay readable unchanged."""

    input: dict[str, Any] = Field(description="the assessment input (schema: Assessment)")
    as_of: date
    result: dict[str, Any] = Field(
        description="the Recommendation as computed (schema of that knowledge version)"
    )
    knowledge_version: str
    policy: dict[str, Any] = Field(description="the clinic policy applied")
    policy_version: int = Field(description="0 = the built-in defaults")


class AssessmentPublic(RecordMeta):
    verdict: str = Field(description="result.verdict, for lists")
    data: AssessmentSnapshot


class PlanSnapshot(Out):
    """A recorded plan as stored: read back as JSON (the planner's result is kept exactly
    as computed under its knowledge version, never re-validated). Plans recorded before
    the planner's output was stored have only ``sites``: they read back with the rest empty.
    """

    input: dict[str, Any] = Field(default_factory=dict, description="planner input (PlanIn)")
    as_of: date | None = None
    result: dict[str, Any] = Field(
        default_factory=dict, description="the ProcedurePlan as computed"
    )
    ledger: list[dict[str, Any]] = Field(
        default_factory=list, description="recorded sessions counted in prior_24h"
    )
    knowledge_version: str | None = None
    policy: dict[str, Any] = Field(default_factory=dict)
    policy_version: int | None = None
    assessment_version: int | None = None
    sites: list[dict[str, Any]] = Field(
        default_factory=list, description="planned sites derived from the result"
    )
    planned_for: date | None = None
    note: str | None = None
    stale: bool = Field(default=False, description="the assessment changed: re-plan first")
    stale_reason: str | None = None


class PlanPublic(RecordMeta):
    plan_status: str = Field(description="result.status (always ready when stored)")
    stale: bool
    data: PlanSnapshot


class SessionPublic(RecordMeta):
    data: SessionData


class OutcomePublic(RecordMeta):
    data: OutcomeData


class EpisodeCourse(CourseReport):
    """The course report, with the safety events of the stored sessions."""

    safety_events: list[SafetyEvent] = Field(
        default_factory=list,
        description="sessions recorded over a dose limit: signs of systemic toxicity to watch "
        "for and the observation advice (S000.28, S000.29)",
    )


class DocumentMeta(Out):
    kind: str
    title: str
    media_type: str
    source_id: UUID | None = None
    knowledge_version: str | None = None
    sha256: str
    size_bytes: int


class DocumentPublic(RecordMeta):
    data: DocumentMeta


class VersionPublic(Out):
    version: int
    status: Status
    data: dict[str, Any]
    recorded_at: datetime
    recorded_by: str
    reason: str | None
    signed_at: datetime | None = None
    signed_by: str | None = None


class History(Out):
    id: UUID
    kind: Kind
    patient_id: UUID
    current_version: int
    versions: list[VersionPublic] = Field(description="oldest first; nothing is ever removed")


# --------------------------------------------------------------------------- requests
class PatientCorrection(Correction):
    data: PatientData


class EpisodeCorrection(Correction):
    data: EpisodeData


class AssessmentCorrection(Correction):
    data: AssessmentIn


class PlanCorrection(Correction):
    data: PlanIn


class SessionCorrection(Correction):
    data: SessionIn


class OutcomeCorrection(Correction):
    data: OutcomeData


class Credentials(Payload):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class UserCreate(Payload):
    username: str = Field(min_length=2, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]+$")
    role: Role
    password: str | None = Field(
        default=None, min_length=12, max_length=256, description="omit for a system account"
    )


class UserUpdate(Payload):
    role: Role | None = None
    active: bool | None = None
    password: str | None = Field(default=None, min_length=12, max_length=256)


class ApiKeyCreate(Payload):
    name: str = Field(min_length=1, max_length=64)
    expires_at: AwareDatetime | None = None


# --------------------------------------------------------------------------- other responses
class UserPublic(Out):
    id: UUID
    username: str
    role: Role
    active: bool
    created_at: datetime
    created_by: str | None
    has_password: bool


class ApiKeyPublic(Out):
    id: UUID
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    token: str = Field(description="shown once; only a digest is stored")


class Me(Out):
    username: str
    role: Role


class LoginResult(Out):
    username: str
    role: Role
    csrf_token: str = Field(description="send as X-CSRF-Token with cookie-authenticated changes")
    expires_at: datetime


class TokenResult(Out):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds")


class AuditEventPublic(Out):
    id: int
    at: datetime
    request_id: str
    actor: str | None
    role: str | None
    action: str
    patient_id: UUID | None
    record_id: UUID | None
    outcome: str


class PolicyPublic(Out):
    version: int = Field(description="0 = the built-in defaults")
    policy: Policy


class Health(Out):
    status: Literal["ok"] = "ok"


class Readiness(Out):
    status: Literal["ready", "not_ready"]
    database: bool
    migration: str | None
    head: str
    detail: str


# --------------------------------------------------------------------------- views
def _meta(r: Record) -> dict[str, Any]:
    v = r.current
    return {
        "id": r.id,
        "kind": r.kind,
        "patient_id": r.patient_id,
        "parent_id": r.parent_id,
        "version": v.version,
        "status": v.status,
        "recorded_at": v.recorded_at,
        "recorded_by": v.recorded_by,
        "reason": v.reason,
        "created_at": r.created_at,
        "created_by": r.created_by,
        "signed_at": v.signed_at,
        "signed_by": v.signed_by,
    }


def patient_view(r: Record) -> PatientPublic:
    return PatientPublic(**_meta(r), data=PatientData.model_validate(r.current.data))


def episode_view(r: Record, kb: Knowledge, today: date) -> EpisodePublic:
    data = EpisodeData.model_validate(r.current.data)
    return EpisodePublic(**_meta(r), data=data, phase=episode_phase(data.onset, today, kb))


def assessment_view(r: Record) -> AssessmentPublic:
    data = AssessmentSnapshot.model_validate(r.current.data)
    return AssessmentPublic(**_meta(r), verdict=str(data.result.get("verdict")), data=data)


def plan_view(r: Record) -> PlanPublic:
    data = PlanSnapshot.model_validate(r.current.data)
    return PlanPublic(
        **_meta(r), plan_status=str(data.result.get("status")), stale=data.stale, data=data
    )


def session_view(r: Record) -> SessionPublic:
    return SessionPublic(**_meta(r), data=SessionData.model_validate(r.current.data))


def outcome_view(r: Record) -> OutcomePublic:
    return OutcomePublic(**_meta(r), data=OutcomeData.model_validate(r.current.data))


def document_view(r: Record) -> DocumentPublic:
    data = {k: v for k, v in r.current.data.items() if k != "content_base64"}
    return DocumentPublic(**_meta(r), data=DocumentMeta.model_validate(data))


def history_view(r: Record, versions: list[Version]) -> History:
    def data(v: Version) -> dict[str, Any]:
        if r.kind == "document":
            return {k: x for k, x in v.data.items() if k != "content_base64"}
        return v.data

    return History(
        id=r.id,
        kind=r.kind,
        patient_id=r.patient_id,
        current_version=r.version,
        versions=[_public(VersionPublic, v, data=data(v)) for v in versions],
    )


def _public(model: type[M], obj: object, **values: Any) -> M:
    """A response from a service object: each field from the attribute of its name, unless
    given (a response names its fields as :mod:`triggerpath.services.model` does)."""
    found = {name: getattr(obj, name) for name in model.model_fields if name not in values}
    return model.model_validate({**found, **values})


def user_view(u: User) -> UserPublic:
    return _public(UserPublic, u, has_password=u.password_hash is not None)


def api_key_view(k: ApiKey) -> ApiKeyPublic:
    return _public(ApiKeyPublic, k)


def audit_view(e: AuditEvent) -> AuditEventPublic:
    assert e.id is not None
    return _public(AuditEventPublic, e)
