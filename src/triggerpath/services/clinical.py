"""Clinical use cases: what is checked and computed before a record is kept.

- a patient's MRN is unique;
- an assessment runs the engine and keeps input, result, knowledge version and the
  clinic policy used (so a stored result can always be traced to what produced it);
- plans and sessions name muscles from the knowledge base; a session's operator is an
  active clinician or nurse; mg per site is derived from % w/v and mL when not given;
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
from triggerpath.domain.policy import DEFAULT_POLICY, Policy
from triggerpath.domain.recommendation import Recommendation
from triggerpath.domain.validation import check_ids, problems_from
from triggerpath.errors import Conflict, FieldProblem, InvalidInput
from triggerpath.knowledge.loader import Knowledge
from triggerpath.services import records
from triggerpath.services.audit import AuditNote
from triggerpath.services.model import Actor, Record
from triggerpath.services.payloads import (
    AssessmentData,
    AssessmentIn,
    DocumentIn,
    OutcomeData,
    PatientData,
    PlanData,
    PlannedSite,
    SessionData,
    SessionIn,
    SessionSite,
    document_data,
    mg_from,
)
from triggerpath.services.uow import UnitOfWork

#: A given mg may differ from % x mL by this fraction (rounding on the chart).
MG_TOLERANCE = 0.02
Phase = Literal["acute", "subacute", "chronic"]


def _json(model: Any) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(mode="json")
    return data


# --------------------------------------------------------------------------- patients
def _check_mrn(uow: UnitOfWork, mrn: str, record_id: UUID | None = None) -> None:
    owner = uow.records.mrn_owner(mrn)
    if owner is not None and owner != record_id:
        raise Conflict("mrn: another patient already has this MRN")


def create_patient(
    uow: UnitOfWork, note: AuditNote, actor: Actor, data: PatientData, now: datetime
) -> Record:
    _check_mrn(uow, data.mrn)
    return records.create(uow, note, actor, "patient", _json(data), now=now, mrn=data.mrn)


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
) -> Record:
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
    )


# --------------------------------------------------------------------------- episodes
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
def current_policy(uow: UnitOfWork) -> tuple[int, Policy]:
    """The clinic policy in force and its version (0 = the built-in defaults)."""
    found = uow.policy.current()
    if found is None:
        return 0, DEFAULT_POLICY
    version, data, _at, _by = found
    return version, Policy.model_validate(data)


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
) -> Record:
    records.get(uow, note, "assessment", assessment_id)
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
def _check_muscles(sites: Sequence[PlannedSite | SessionSite], kb: Knowledge) -> None:
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
    data: PlanData,
    kb: Knowledge,
    now: datetime,
) -> Record:
    records.get(uow, note, "assessment", assessment_id)
    _check_muscles(data.sites, kb)
    return records.create(uow, note, actor, "plan", _json(data), now=now, parent_id=assessment_id)


def correct_plan(
    uow: UnitOfWork,
    note: AuditNote,
    actor: Actor,
    plan_id: UUID,
    data: PlanData,
    kb: Knowledge,
    *,
    expected: int,
    reason: str,
    now: datetime,
) -> Record:
    records.get(uow, note, "plan", plan_id)
    _check_muscles(data.sites, kb)
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
def session_data(body: SessionIn, operator: str) -> SessionData:
    """Fill in mg per site from % w/v and mL; refuse a given mg that disagrees."""
    sites: list[SessionSite] = []
    problems: list[FieldProblem] = []
    totals: dict[str, float] = {}
    for i, site in enumerate(body.sites):
        mg = site.mg
        if site.concentration_percent is not None:
            computed = mg_from(site.concentration_percent, site.volume_ml)
            if mg is None:
                mg = computed
            elif abs(mg - computed) > MG_TOLERANCE * max(computed, 1.0):
                problems.append(
                    FieldProblem(
                        f"sites[{i}].mg",
                        f"{mg:g} mg does not match {site.concentration_percent:g} % x "
                        f"{site.volume_ml:g} mL = {computed:g} mg",
                    )
                )
        if mg is not None:
            totals[site.agent] = round(totals.get(site.agent, 0.0) + mg, 3)
        sites.append(site.model_copy(update={"mg": mg}))
    if problems:
        raise InvalidInput(problems)
    return SessionData(
        performed_at=body.performed_at,
        operator=operator,
        plan_id=body.plan_id,
        sites=sites,
        complications=body.complications,
        note=body.note,
        total_mg_by_agent=totals,
    )


def _prepare_session(
    uow: UnitOfWork,
    actor: Actor,
    episode: Record,
    body: SessionIn,
    kb: Knowledge,
) -> SessionData:
    _check_muscles(body.sites, kb)
    operator = body.operator or actor.username
    user = uow.users.by_username(operator)
    if user is None or not user.active or user.role not in ("clinician", "nurse"):
        raise InvalidInput.single("operator", "not an active clinician or nurse")
    if body.plan_id is not None:
        plan = uow.records.get(body.plan_id)
        if plan is None or plan.kind != "plan" or plan.patient_id != episode.patient_id:
            raise InvalidInput.single("plan_id", "not a plan of this patient")
    return session_data(body, operator)


def record_session(
    uow: UnitOfWork,
    note: AuditNote,
    actor: Actor,
    episode_id: UUID,
    body: SessionIn,
    kb: Knowledge,
    now: datetime,
) -> Record:
    episode = records.get(uow, note, "episode", episode_id)
    data = _prepare_session(uow, actor, episode, body, kb)
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
) -> Record:
    session = records.get(uow, note, "session", session_id)
    assert session.parent_id is not None
    episode = records.get(uow, AuditNote(), "episode", session.parent_id)
    data = _prepare_session(uow, actor, episode, body, kb)
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


# --------------------------------------------------------------------------- outcomes
def _check_outcome(uow: UnitOfWork, episode: Record, data: OutcomeData) -> None:
    if data.session_id is None:
        return
    session = uow.records.get(data.session_id)
    if session is None or session.kind != "session" or session.parent_id != episode.id:
        raise InvalidInput.single("session_id", "not a session of this episode")


def record_outcome(
    uow: UnitOfWork,
    note: AuditNote,
    actor: Actor,
    episode_id: UUID,
    data: OutcomeData,
    now: datetime,
) -> Record:
    episode = records.get(uow, note, "episode", episode_id)
    _check_outcome(uow, episode, data)
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
) -> Record:
    outcome = records.get(uow, note, "outcome", outcome_id)
    assert outcome.parent_id is not None
    episode = records.get(uow, AuditNote(), "episode", outcome.parent_id)
    _check_outcome(uow, episode, data)
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
    data = document_data(body)
    if body.source_id is not None:
        source = uow.records.get(body.source_id)
        if source is None or source.patient_id != patient_id:
            raise InvalidInput.single("source_id", "not a record of this patient")
    return records.create(uow, note, actor, "document", _json(data), now=now, parent_id=patient_id)
