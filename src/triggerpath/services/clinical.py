"""Clinical use cases: what is checked and computed before a record is kept.

Every write here asks the safety kernel (:mod:`triggerpath.services.kernel`) first; the
kernel refuses with one ``WriteRefused`` (422, audit outcome ``invalid``, nothing stored)
or returns the content to store. Entry points (API, web, CLI, CDS, imports) call these
functions, never :func:`records.create` directly for a clinical kind.

- a patient's MRN is unique;
- an assessment runs the engine and keeps input, result, knowledge version and the
  clinic policy used (so a stored result can always be traced to what produced it);
- a plan is the planner's output for the stored assessment (only ``ready`` is kept);
- a session is checked by the dose engine against the 24-hour ledger of recorded sessions;
- outcomes are in their instrument's range; nothing clinical is dated in the future;
- documents keep their SHA-256 digest and size.

Every function takes the unit of work and the audit note of the call it runs in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import ValidationError

from triggerpath.domain.assessment import Assessment
from triggerpath.domain.engine import assess
from triggerpath.domain.identity import search_key
from triggerpath.domain.integrity import SafetyEvent, dose_safety_event
from triggerpath.domain.policy import Policy
from triggerpath.domain.recommendation import Recommendation
from triggerpath.domain.validation import check_ids, problems_from
from triggerpath.errors import Conflict, FieldProblem, InvalidInput
from triggerpath.knowledge.integrity import load_integrity
from triggerpath.knowledge.loader import Knowledge
from triggerpath.services import kernel, records
from triggerpath.services.audit import AuditNote
from triggerpath.services.kernel import current_policy
from triggerpath.services.model import Actor, PatientIndex, Record
from triggerpath.services.payloads import (
    AssessmentData,
    AssessmentIn,
    DocumentIn,
    EpisodeData,
    OutcomeData,
    PatientData,
    PlanIn,
    SessionIn,
    SessionSite,
    document_data,
)
from triggerpath.services.uow import UnitOfWork

Phase = Literal["acute", "subacute", "chronic"]


def _json(model: Any) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(mode="json")
    return data


# --------------------------------------------------------------------------- patients
def _check_mrn(uow: UnitOfWork, mrn: str, record_id: UUID | None = None) -> None:
    owner = uow.records.mrn_owner(mrn)
    if owner is not None and owner != record_id:
        raise Conflict("mrn: another patient already has this MRN")


def patient_index(data: PatientData) -> PatientIndex:
    """What the index row keeps of a patient's identity, for search (migration 0006)."""
    key = search_key(data.family_name, data.given_name)
    return PatientIndex(data.family_name, data.given_name, data.birth_date, key or None)


def create_patient(
    uow: UnitOfWork, note: AuditNote, actor: Actor, data: PatientData, now: datetime
) -> Record:
    """Register a patient: identity by the one rule (kernel, domain/identity.py), unique MRN."""
    data = kernel.admit_patient(kernel.context(uow, actor, None, now), data)
    _check_mrn(uow, data.mrn)
    return records.create(
        uow,
        note,
        actor,
        "patient",
        _json(data),
        now=now,
        mrn=data.mrn,
        identity=patient_index(data),
    )


def correct_patient(
    uow: UnitOfWork,
    note: AuditNote,
    actor: Actor,
    patient_id: UUID,
    *,
    expected: int,
    reason: str,
    data: PatientData,
    now: datetime,
    if_match: str | None = None,
) -> Record:
    data = kernel.admit_patient(kernel.context(uow, actor, None, now), data)
    _check_mrn(uow, data.mrn, patient_id)
    return records.correct(
        uow,
        note,
        actor,
        "patient",
        patient_id,
        expected=expected,
        reason=reason,
        data=_json(data),
        now=now,
        mrn=data.mrn,
        if_match=if_match,
        identity=patient_index(data),
    )


# --------------------------------------------------------------------------- episodes
def record_episode(
    uow: UnitOfWork,
    note: AuditNote,
    actor: Actor,
    patient_id: UUID,
    data: EpisodeData,
    now: datetime,
) -> Record:
    """Open an episode: onset and closing date checked against the clock and the birth year."""
    patient = records.get(uow, note, "patient", patient_id)
    kernel.admit_episode(kernel.context(uow, actor, None, now), patient, data)
    return records.create(uow, note, actor, "episode", _json(data), now=now, parent_id=patient_id)


def correct_episode(
    uow: UnitOfWork,
    note: AuditNote,
    actor: Actor,
    episode_id: UUID,
    *,
    expected: int,
    reason: str,
    data: EpisodeData,
    now: datetime,
    if_match: str | None = None,
) -> Record:
    episode = records.get(uow, note, "episode", episode_id)
    patient = records.get(uow, AuditNote(), "patient", episode.patient_id)
    kernel.admit_episode(kernel.context(uow, actor, None, now), patient, data)
    return records.correct(
        uow,
        note,
        actor,
        "episode",
        episode_id,
        expected=expected,
        reason=reason,
        data=_json(data),
        now=now,
        if_match=if_match,
    )


def episode_phase(onset: date | None, as_of: date, kb: Knowledge) -> Phase | None:
    """Acute / subacute / chronic from the weeks since onset, by the knowledge base's bounds.

    The bounds are data (``duration_phases`` in pathway.yaml: < 6 weeks acute, 6-12
    subacute, > 12 chronic; van Tulder 2006, Airaksinen 2006).
    """
    if onset is None or onset > as_of:
        return None
    weeks = (as_of - onset).days / 7
    for ph in kb.pathway.duration_phases:
        below_max = (
            ph.max_weeks is None
            or weeks < ph.max_weeks
            or (ph.max_inclusive and weeks == ph.max_weeks)
        )
        if weeks >= ph.min_weeks and below_max:
            return ph.id
    return None


# --------------------------------------------------------------------------- policy
def update_policy(
    uow: UnitOfWork, actor: Actor, *, expected: int, reason: str, policy: Policy, now: datetime
) -> tuple[int, Policy]:
    version, _ = current_policy(uow)
    if expected != version:
        raise records.VersionConflict("policy", expected, version)
    uow.policy.add(version + 1, _json(policy), now, actor.username, reason)
    return version + 1, policy


# --------------------------------------------------------------------------- assessments
def _run_engine(uow: UnitOfWork, body: AssessmentIn, kb: Knowledge, today: date) -> AssessmentData:
    problems = check_ids(body.input, kb, prefix="input")
    if problems:
        raise InvalidInput(problems)
    policy_version, policy = current_policy(uow)
    as_of = body.as_of or today
    result = assess(body.input, kb, as_of=as_of, policy=policy)
    return AssessmentData(
        input=body.input,
        as_of=as_of,
        result=result,
        knowledge_version=kb.version,
        policy=policy,
        policy_version=policy_version,
    )


def record_assessment(
    uow: UnitOfWork,
    note: AuditNote,
    actor: Actor,
    episode_id: UUID,
    body: AssessmentIn,
    kb: Knowledge,
    *,
    today: date,
    now: datetime,
) -> Record:
    records.get(uow, note, "episode", episode_id)
    kernel.admit_assessment(kernel.context(uow, actor, kb, now, today), body)
    data = _run_engine(uow, body, kb, today)
    return records.create(
        uow, note, actor, "assessment", _json(data), now=now, parent_id=episode_id
    )


def correct_assessment(
    uow: UnitOfWork,
    note: AuditNote,
    actor: Actor,
    assessment_id: UUID,
    body: AssessmentIn,
    kb: Knowledge,
    *,
    expected: int,
    reason: str,
    today: date,
    now: datetime,
    if_match: str | None = None,
) -> Record:
    records.get(uow, note, "assessment", assessment_id)
    kernel.admit_assessment(kernel.context(uow, actor, kb, now, today), body)
    data = _run_engine(uow, body, kb, today)
    return records.correct(
        uow,
        note,
        actor,
        "assessment",
        assessment_id,
        expected=expected,
        reason=reason,
        data=_json(data),
        now=now,
        if_match=if_match,
    )


def reassess(
    uow: UnitOfWork, note: AuditNote, assessment_id: UUID, kb: Knowledge, *, today: date
) -> Recommendation:
    """The stored input run again with today's knowledge and policy (nothing stored)."""
    record = records.get(uow, note, "assessment", assessment_id)
    try:
        stored = Assessment.model_validate(record.current.data["input"])
    except ValidationError as err:  # recorded under an older input schema
        raise InvalidInput(problems_from(err, prefix="input")) from None
    return _run_engine(uow, AssessmentIn(input=stored, as_of=today), kb, today).result


# --------------------------------------------------------------------------- plans
def _check_muscles(sites: Sequence[SessionSite], kb: Knowledge) -> None:
    problems = [
        FieldProblem(f"sites[{i}].muscle", f"unknown muscle {s.muscle!r}")
        for i, s in enumerate(sites)
        if s.muscle not in kb.muscles
    ]
    if problems:
        raise InvalidInput(problems)


def record_plan(
    uow: UnitOfWork,
    note: AuditNote,
    actor: Actor,
    assessment_id: UUID,
    body: PlanIn,
    kb: Knowledge,
    now: datetime,
    *,
    today: date | None = None,
) -> Record:
    """Plan from the stored assessment; only a ``ready`` plan is kept (kernel rule)."""
    assessment = records.get(uow, note, "assessment", assessment_id)
    ctx = kernel.context(uow, actor, kb, now, today)
    data = kernel.admit_plan(uow, ctx, assessment, body)
    return records.create(uow, note, actor, "plan", _json(data), now=now, parent_id=assessment_id)


def correct_plan(
    uow: UnitOfWork,
    note: AuditNote,
    actor: Actor,
    plan_id: UUID,
    body: PlanIn,
    kb: Knowledge,
    *,
    expected: int,
    reason: str,
    now: datetime,
    today: date | None = None,
    if_match: str | None = None,
) -> Record:
    """Re-plan: the planner runs again on the assessment as it now stands (clears stale)."""
    plan = records.get(uow, note, "plan", plan_id)
    assert plan.parent_id is not None
    assessment = records.get(uow, AuditNote(), "assessment", plan.parent_id)
    if assessment.status != "active":
        raise Conflict("the assessment was entered in error: record a new one and plan from it")
    records.check_if_match(plan, if_match)
    data = kernel.admit_plan(uow, kernel.context(uow, actor, kb, now, today), assessment, body)
    return records.correct(
        uow,
        note,
        actor,
        "plan",
        plan_id,
        expected=expected,
        reason=reason,
        data=_json(data),
        now=now,
    )


# --------------------------------------------------------------------------- sessions
def record_session(
    uow: UnitOfWork,
    note: AuditNote,
    actor: Actor,
    episode_id: UUID,
    body: SessionIn,
    kb: Knowledge,
    now: datetime,
) -> Record:
    """Record a session as performed; the kernel checks it against the 24-hour ledger."""
    episode = records.get(uow, note, "episode", episode_id)
    _check_muscles(body.sites, kb)
    data = kernel.admit_session(uow, kernel.context(uow, actor, kb, now), episode, body)
    if data.dose_exceeded:
        note.flag("dose_exceeded")
    return records.create(uow, note, actor, "session", _json(data), now=now, parent_id=episode_id)


def correct_session(
    uow: UnitOfWork,
    note: AuditNote,
    actor: Actor,
    session_id: UUID,
    body: SessionIn,
    kb: Knowledge,
    *,
    expected: int,
    reason: str,
    now: datetime,
    if_match: str | None = None,
) -> Record:
    session = records.get(uow, note, "session", session_id)
    assert session.parent_id is not None
    episode = records.get(uow, AuditNote(), "episode", session.parent_id)
    records.check_if_match(session, if_match)
    _check_muscles(body.sites, kb)
    ctx = kernel.context(uow, actor, kb, now)
    data = kernel.admit_session(uow, ctx, episode, body, replacing=session_id)
    if data.dose_exceeded:
        note.flag("dose_exceeded")
    return records.correct(
        uow,
        note,
        actor,
        "session",
        session_id,
        expected=expected,
        reason=reason,
        data=_json(data),
        now=now,
    )


def safety_events(sessions: Sequence[Record], kb: Knowledge) -> list[SafetyEvent]:
    """The safety events of stored sessions (a dose over a limit, with what to watch for)."""
    bounds = load_integrity()
    found = (dose_safety_event(str(r.id), r.current.data, kb, bounds) for r in sessions)
    return [e for e in found if e is not None]


# --------------------------------------------------------------------------- outcomes
def record_outcome(
    uow: UnitOfWork,
    note: AuditNote,
    actor: Actor,
    episode_id: UUID,
    data: OutcomeData,
    now: datetime,
    *,
    kb: Knowledge | None = None,
) -> Record:
    """Record an outcome: in its instrument's range, not in the future, not before its session."""
    episode = records.get(uow, note, "episode", episode_id)
    kernel.admit_outcome(uow, kernel.context(uow, actor, kb, now), episode, data)
    return records.create(uow, note, actor, "outcome", _json(data), now=now, parent_id=episode_id)


def correct_outcome(
    uow: UnitOfWork,
    note: AuditNote,
    actor: Actor,
    outcome_id: UUID,
    data: OutcomeData,
    *,
    expected: int,
    reason: str,
    now: datetime,
    kb: Knowledge | None = None,
    if_match: str | None = None,
) -> Record:
    outcome = records.get(uow, note, "outcome", outcome_id)
    assert outcome.parent_id is not None
    episode = records.get(uow, AuditNote(), "episode", outcome.parent_id)
    kernel.admit_outcome(uow, kernel.context(uow, actor, kb, now), episode, data)
    return records.correct(
        uow,
        note,
        actor,
        "outcome",
        outcome_id,
        expected=expected,
        reason=reason,
        data=_json(data),
        now=now,
        if_match=if_match,
    )


# --------------------------------------------------------------------------- documents
def record_document(
    uow: UnitOfWork,
    note: AuditNote,
    actor: Actor,
    patient_id: UUID,
    body: DocumentIn,
    now: datetime,
) -> Record:
    records.get(uow, note, "patient", patient_id)
    kernel.admit_text(body.model_dump(mode="json", exclude={"content_base64"}))
    data = document_data(body)
    if body.source_id is not None:
        source = uow.records.get(body.source_id)
        if source is None or source.patient_id != patient_id:
            raise InvalidInput.single("source_id", "not a record of this patient")
    return records.create(uow, note, actor, "document", _json(data), now=now, parent_id=patient_id)


__all__ = [
    "correct_assessment",
    "correct_episode",
    "correct_outcome",
    "correct_patient",
    "correct_plan",
    "correct_session",
    "create_patient",
    "current_policy",
    "episode_phase",
    "patient_index",
    "reassess",
    "record_assessment",
    "record_document",
    "record_episode",
    "record_outcome",
    "record_plan",
    "record_session",
    "safety_events",
    "update_policy",
]
