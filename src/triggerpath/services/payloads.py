"""The content of each kind of clinical record, as posted and as stored.

Data minimisation: the patient is identified by what safe care needs (two identifiers,
NPSG.01.01.01): family and given names, date of birth, sex and the local MRN; no address,
no contact details. Free-text notes are optional and short.

Where the stored content differs from what is posted (an assessment keeps the engine's
result; a session keeps the mg computed per site; a document keeps its digest), there
is an ``...In`` model for the request and a stored model for the record.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from triggerpath.domain.assessment import Assessment, Side
from triggerpath.domain.dosing import PriorDose
from triggerpath.domain.identity import NAME_MAX_CHARS, Sex
from triggerpath.domain.integrity import Deviation, PlannedSite
from triggerpath.domain.planning import Injectate, SteroidChoice, Target
from triggerpath.domain.policy import Policy
from triggerpath.domain.recommendation import Recommendation
from triggerpath.errors import InvalidInput
from triggerpath.knowledge.schema import Region


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


MRN = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"),
]
Username = Annotated[
    str, StringConstraints(min_length=2, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]+$")
]
Code = Annotated[str, StringConstraints(min_length=2, max_length=40, pattern=r"^[a-z][a-z0-9_]+$")]
Note = Annotated[str, StringConstraints(max_length=2000)]
#: Why a dose limit was exceeded: free text, stored exactly as typed (the kernel checks length).
ExceedanceReason = Annotated[str, StringConstraints(max_length=2000)]
ReasonText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]
PersonName = Annotated[str, StringConstraints(max_length=NAME_MAX_CHARS)]


def _calendar_date(value: object) -> object:
    """Only a calendar date (YYYY-MM-DD or a date): pydantic would read a number as a time."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("must be a date YYYY-MM-DD")
    return value


CalendarDate = Annotated[date, BeforeValidator(_calendar_date)]


class PatientData(Payload):
    """A patient as posted and as stored: names, date of birth, sex (no default), MRN.

    Names and date of birth are required on every write by the clinic policy's
    ``patient_identifiers`` (default ``two_identifiers``; domain/identity.py is the rule,
    applied by the safety kernel): they are optional here only so that patients registered
    before migration 0006 (MRN, year of birth and sex) still read back.
    """

    mrn: MRN = Field(description="local medical record number")
    family_name: PersonName | None = Field(
        default=None, description="family name (surname); required unless policy is minimal"
    )
    given_name: PersonName | None = Field(
        default=None, description="given name(s), space-separated; required unless minimal"
    )
    birth_date: CalendarDate | None = Field(
        default=None, description="date of birth, YYYY-MM-DD; required unless minimal"
    )
    sex: Sex = Field(description="FHIR administrative gender: female, male, other or unknown")
    birth_year: int | None = Field(
        default=None,
        ge=1900,
        le=2100,
        description="year of birth: kept from birth_date (records before 0006 have only this)",
    )


class EpisodeData(Payload):
    """One episode of back pain care."""

    regions: list[Region] = Field(min_length=1, max_length=5)
    onset: date | None = Field(default=None, description="symptom onset (phase is derived)")
    status: Literal["open", "closed"] = "open"
    closed_on: date | None = None
    note: Note | None = None

    @model_validator(mode="after")
    def _consistent(self) -> EpisodeData:
        if len(set(self.regions)) != len(self.regions):
            raise ValueError("regions: each region once")
        if self.closed_on is not None and self.status != "closed":
            raise ValueError("closed_on: only for a closed episode")
        if self.closed_on and self.onset and self.closed_on < self.onset:
            raise ValueError("closed_on: before the onset")
        return self


class AssessmentIn(Payload):
    """An assessment to record: the engine input and the date it is made for."""

    input: Assessment
    as_of: date | None = Field(default=None, description="assessment date; default today")


class AssessmentData(Payload):
    """A recorded assessment: input, the engine's result and what produced it."""

    input: Assessment
    as_of: date
    result: Recommendation
    knowledge_version: str
    policy: Policy
    policy_version: int = Field(description="clinic policy version used; 0 = defaults")


Agent = Code
Concentration = Annotated[float, Field(gt=0, le=10, description="% w/v (1% = 10 mg/mL)")]
Volume = Annotated[float, Field(gt=0, le=50, description="millilitres")]


class PlanIn(Payload):
    """A plan to record: the planner's own file (``triggerpath plan FILE``) without the
    assessment, which is the stored record the plan hangs under."""

    targets: list[Target] = Field(min_length=1, max_length=20)
    injectate: Injectate
    prior_24h: list[PriorDose] = Field(
        default_factory=list,
        max_length=50,
        description="local anesthetic given elsewhere in the last 24 hours; sessions recorded "
        "here are added by the service",
    )
    acknowledged_cautions: list[Code] = Field(default_factory=list, max_length=40)
    steroid: SteroidChoice | None = None
    planned_for: date | None = Field(default=None, description="planned date (may be ahead)")
    note: Note | None = None


class LedgerEntry(Payload):
    """A recorded session counted in a plan's or a session's 24-hour dose ledger."""

    session_id: UUID
    performed_at: AwareDatetime
    agent: str
    mg: float


class PlanData(Payload):
    """A recorded plan: the planner's input and its full result, and what produced it.

    ``sites`` is derived from the result (one line per target and mixture component) so a
    session can be compared with the plan it carries out. ``stale`` is set when the
    assessment is corrected or retracted: the plan must be re-planned before it is signed.
    The kernel always fills every field; the defaults let plans recorded before the
    planner's output was kept (``sites`` only) still be read.
    """

    input: dict[str, Any] = Field(
        default_factory=dict, description="the planner input as posted (schema: PlanIn)"
    )
    as_of: date | None = None
    result: dict[str, Any] = Field(
        default_factory=dict, description="the ProcedurePlan as computed"
    )
    ledger: list[LedgerEntry] = Field(default_factory=list)
    knowledge_version: str | None = None
    policy: Policy | None = None
    policy_version: int | None = None
    assessment_version: int | None = Field(
        default=None, description="the assessment version planned from"
    )
    sites: list[PlannedSite] = Field(default_factory=list)
    planned_for: date | None = None
    note: Note | None = None
    stale: bool = False
    stale_reason: str | None = None


Complication = Literal[
    "none",
    "vasovagal",
    "bleeding_or_haematoma",
    "post_injection_soreness",
    "pneumothorax",
    "infection",
    "nerve_injury",
    "allergic_reaction",
    "local_anaesthetic_toxicity",
    "other",
]


class SessionSite(Payload):
    muscle: str = Field(description="muscle id from the knowledge base")
    side: Side
    agent: Agent
    concentration_percent: Concentration | None = None
    epinephrine: bool = Field(default=False, description="the solution contained epinephrine")
    volume_ml: Volume
    mg: float | None = Field(
        default=None, ge=0, le=5000, description="dose given; computed from % and mL if omitted"
    )


class SessionIn(Payload):
    """A procedure session as performed."""

    performed_at: AwareDatetime
    operator: Username | None = Field(
        default=None,
        description="who records it: always the signed-in user (may be omitted; another name "
        "is refused: name who performed it in performer)",
    )
    performer: Username | None = Field(
        default=None,
        description="who performed it (default the recording user); when it is someone else "
        "the session stays unattested until they attest it",
    )
    plan_id: UUID | None = Field(default=None, description="the plan this session carries out")
    sites: list[SessionSite] = Field(min_length=1, max_length=40)
    complications: list[Complication] = Field(default_factory=list, max_length=10)
    note: Note | None = None
    exceedance_reason: ExceedanceReason | None = Field(
        default=None,
        description="why a dose limit was exceeded (at least 10 characters); required to record "
        "a session over a limit, which is then flagged dose_exceeded",
    )


Attestation = Literal["attested", "unattested"]


class SessionDose(Payload):
    """The dose engine's verdict on a session against its 24-hour ledger."""

    level: str
    headline: str
    fraction: float
    statement_ids: list[str] = Field(default_factory=list)


class SessionData(Payload):
    performed_at: AwareDatetime
    operator: Username = Field(description="who recorded it (the signed-in user)")
    performer: Username | None = Field(default=None, description="who performed it")
    attestation: Attestation = "attested"
    attested_by: Username | None = None
    attested_at: AwareDatetime | None = None
    plan_id: UUID | None = None
    sites: list[SessionSite] = Field(min_length=1, max_length=40)
    complications: list[Complication] = Field(default_factory=list)
    note: Note | None = None
    total_mg_by_agent: dict[str, float] = Field(
        default_factory=dict, description="sum of mg per agent over the sites where mg is known"
    )
    dose: SessionDose | None = None
    ledger: list[LedgerEntry] = Field(default_factory=list)
    dose_exceeded: bool = False
    exceedance_reason: ExceedanceReason | None = None
    deviations: list[Deviation] = Field(default_factory=list)


def mg_from(concentration_percent: float, volume_ml: float) -> float:
    """Milligrams in ``volume_ml`` of a ``concentration_percent`` % w/v solution.

    % w/v is grams per 100 mL, so 1 % = 10 mg/mL (e.g. 5 mL of 1 % lidocaine = 50 mg).
    """
    return round(concentration_percent * 10.0 * volume_ml, 3)


class OutcomeData(Payload):
    """One outcome measurement (pain NRS, a disability index ...)."""

    measured_on: date
    instrument: Code = Field(description="e.g. nrs, odi, rmdq, ndi")
    value: float = Field(ge=-1e6, le=1e6)
    items: dict[Code, float] | None = Field(
        default=None, max_length=100, description="item answers, when the instrument has items"
    )
    session_id: UUID | None = None
    relation: Literal["before", "after"] | None = Field(
        default=None,
        description="measured before or after the session it belongs to; null = from the times "
        "(domain/timeline.py); a follow-up dated before its session is refused",
    )
    note: Note | None = None

    @model_validator(mode="after")
    def _finite(self) -> OutcomeData:
        if not math.isfinite(self.value):
            raise ValueError("value: must be a finite number")
        return self


MediaType = Literal[
    "application/pdf",
    "text/plain",
    "text/html",
    "text/markdown",
    "application/json",
    "application/fhir+json",
]


class DocumentIn(Payload):
    """A generated document (report, patient leaflet, letter) to keep with the record."""

    kind: Code = Field(description="e.g. assessment_report, patient_leaflet, referral_letter")
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    media_type: MediaType
    content_base64: str = Field(min_length=1, description="the document, base64")
    source_id: UUID | None = Field(default=None, description="record it was generated from")
    knowledge_version: str | None = Field(default=None, max_length=32)

    def content(self) -> bytes:
        try:
            return base64.b64decode(self.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput.single("content_base64", "not valid base64") from None


class DocumentData(DocumentIn):
    sha256: str
    size_bytes: int


def document_data(doc: DocumentIn) -> DocumentData:
    raw = doc.content()
    return DocumentData(
        **doc.model_dump(), sha256=hashlib.sha256(raw).hexdigest(), size_bytes=len(raw)
    )


class Correction(Payload):
    """Common part of every correction: the version it corrects and why."""

    version: int = Field(ge=1, description="the version you read (optimistic concurrency)")
    reason: ReasonText


class Retraction(Correction):
    """Mark a record entered in error (it stays in the history)."""


class Signature(Payload):
    version: int = Field(ge=1, description="the version you read and sign")
    password: str = Field(
        min_length=1,
        max_length=1024,
        description="your password, re-entered to sign (failures count like sign-ins)",
        json_schema_extra={"writeOnly": True, "format": "password"},
    )


class AddendumIn(Payload):
    """Text added to a signed record (the record itself stays as signed)."""

    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=4000)]


class AttestationIn(Payload):
    """The performer confirms a session recorded for them by someone else."""

    version: int = Field(ge=1, description="the version you read and attest")


class PolicyUpdate(Payload):
    version: int = Field(ge=0, description="the policy version you read (0 = defaults)")
    reason: ReasonText
    policy: Policy


__all__ = [
    "AssessmentData",
    "AssessmentIn",
    "Correction",
    "DocumentData",
    "DocumentIn",
    "EpisodeData",
    "LedgerEntry",
    "OutcomeData",
    "PatientData",
    "PlanData",
    "PlanIn",
    "PlannedSite",
    "PolicyUpdate",
    "Retraction",
    "SessionData",
    "SessionDose",
    "SessionIn",
    "Signature",
    "mg_from",
]
