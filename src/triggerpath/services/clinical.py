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

:data:`ADMIT` holds each kind's rules once; :func:`create` and :func:`correct` are the one
write path for every kind, taking the :class:`~triggerpath.services.records.Write` (unit of
work, audit note, actor, clock, knowledge) of the call they run in::

    clinical.create(Write(uow, note, actor, now, kb, today), "session", episode_id, SessionIn)
    clinical.correct(w, "session", session_id, Change(expected, reason, if_match), SessionIn)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ValidationError

from triggerpath.domain.assessment import Assessment
from triggerpath.domain.engine import assess, duration_phase
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
from triggerpath.services.model import (
    NO_INDEX,
    PARENT_KIND,
    Actor,
    Kind,
    PatientIndex,
    Record,
    RecordIndex,
)
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
from triggerpath.services.records import Change, Write
from triggerpath.services.uow import UnitOfWork

Phase = Literal["acute", "subacute", "chronic"]


Admitted = tuple[BaseModel, RecordIndex]


def _json(model: Any) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(mode="json")
    return data


# --------------------------------------------------------------------------- the kinds' rules
#: admit(write, parent, body, record_id) -> (content to keep, index): one kind's checks and
#: what it derives, run by the safety kernel before anything is written. ``record_id`` is
#: the record being corrected (None for a new one); ``parent`` is the record it hangs under.
Admit = Callable[[Write, Record | None, Any, UUID | None], Admitted]


def _check_mrn(uow: UnitOfWork, mrn: str, record_id: UUID | None = None) -> None:
    owner = uow.records.mrn_owner(mrn)
    if owner is not None and owner != record_id:
        raise Conflict("mrn: another patient already has this MRN")


def patient_index(data: PatientData) -> PatientIndex:
    """What the index row keeps of a patient's identity, for search (migration 0006)."""
    key = search_key(data.family_name, data.given_name)
    return PatientIndex(data.family_name, data.given_name, data.birth_date, key or None)


def _patient(w: Write, _: Record | None, data: PatientData, record_id: UUID | None) -> Admitted:
    """Identity by the one rule (kernel, domain/identity.py); the MRN is unique."""
    data = kernel.admit_patient(w.context(), data)
    _check_mrn(w.uow, data.mrn, record_id)
    return data, RecordIndex(data.mrn, patient_index(data))


def _episode(w: Write, patient: Record | None, data: EpisodeData, _: UUID | None) -> Admitted:
    """Onset and closing date checked against the clock and the birth year."""
    assert patient is not None
    kernel.admit_episode(w.context(), patient, data)
    return data, NO_INDEX


def _run_engine(uow: UnitOfWork, body: AssessmentIn, kb: Knowledge, today: date) -> AssessmentData:
    problems = check_ids(body.input, kb, prefix="input")
    if problems:
        raise InvalidInput(problems)
    policy_version, policy = current_policy(uow)
    as_of = body.as_of or today
    return AssessmentData(
        input=body.input,
        as_of=as_of,
        result=assess(body.input, kb, as_of=as_of, policy=policy),
        knowledge_version=kb.version,
        policy=policy,
        policy_version=policy_version,
    )


def _assessment(w: Write, _: Record | None, body: AssessmentIn, __: UUID | None) -> Admitted:
    """The engine runs on the input; input, result, knowledge version and policy are kept."""
    ctx = w.context(clinic_day=True)
    kernel.admit_assessment(ctx, body)
    return _run_engine(w.uow, body, ctx.kb, ctx.today), NO_INDEX


def _plan(w: Write, assessment: Record | None, body: PlanIn, plan_id: UUID | None) -> Admitted:
    """The planner's output for the assessment as it now stands; only ``ready`` is kept."""
    assert assessment is not None
    if plan_id is not None and assessment.status != "active":
        raise Conflict("the assessment was entered in error: record a new one and plan from it")
    return kernel.admit_plan(w.context(clinic_day=True), assessment, body), NO_INDEX


def _check_muscles(sites: Sequence[SessionSite], kb: Knowledge) -> None:
    problems = [
        FieldProblem(f"sites[{i}].muscle", f"unknown muscle {s.muscle!r}")
        for i, s in enumerate(sites)
        if s.muscle not in kb.muscles
    ]
    if problems:
        raise InvalidInput(problems)


def _session(w: Write, episode: Record | None, body: SessionIn, sid: UUID | None) -> Admitted:
    """Checked against the 24-hour ledger (without the version it corrects)."""
    assert episode is not None
    ctx = w.context()
    _check_muscles(body.sites, ctx.kb)
    data = kernel.admit_session(ctx, episode, body, replacing=sid)
    if data.dose_exceeded:
        w.note.flag("dose_exceeded")
    return data, NO_INDEX


def _outcome(w: Write, episode: Record | None, data: OutcomeData, _: UUID | None) -> Admitted:
    """In its instrument's range, not in the future, not before its session."""
    assert episode is not None
    kernel.admit_outcome(w.context(), episode, data)
    return data, NO_INDEX


def _document(w: Write, patient: Record | None, body: DocumentIn, _: UUID | None) -> Admitted:
    """A document keeps its SHA-256 digest and size; its source is a record of the patient."""
    assert patient is not None
    kernel.admit_text(body.model_dump(mode="json", exclude={"content_base64"}))
    data = document_data(body)
    if body.source_id is not None:
        source = w.uow.records.get(body.source_id)
        if source is None or source.patient_id != patient.id:
            raise InvalidInput.single("source_id", "not a record of this patient")
    return data, NO_INDEX


ADMIT: dict[Kind, Admit] = {
    "patient": _patient,
    "episode": _episode,
    "assessment": _assessment,
    "plan": _plan,
    "session": _session,
    "outcome": _outcome,
    "document": _document,
}


# --------------------------------------------------------------------------- the use cases
def _parent(w: Write, kind: Kind, parent_id: UUID | None, note: AuditNote) -> Record | None:
    parent_kind = PARENT_KIND[kind]
    if parent_kind is None or parent_id is None:
        return None
    return records.get(w.uow, note, parent_kind, parent_id)


def create(w: Write, kind: Kind, parent_id: UUID | None, body: Any) -> Record:
    """Keep ``body`` as a new record of ``kind`` under ``parent_id`` once its rules admit it."""
    data, ix = ADMIT[kind](w, _parent(w, kind, parent_id, w.note), body, None)
    return records.create(w, kind, _json(data), parent_id, ix)


def correct(w: Write, kind: Kind, record_id: UUID, change: Change, body: Any) -> Record:
    """A new version of the record from ``body``, checked again by the kind's rules."""
    record = records.current(w, kind, record_id, change)
    parent = _parent(w, kind, record.parent_id, AuditNote())  # read, not what the call touches
    data, ix = ADMIT[kind](w, parent, body, record_id)
    return records.correct(w, kind, record_id, change, _json(data), ix)


def episode_phase(onset: date | None, as_of: date, kb: Knowledge) -> Phase | None:
    """Acute / subacute / chronic from the weeks since onset, by the knowledge base's bounds
    (the engine's one rule, :func:`triggerpath.domain.engine.duration_phase`)."""
    if onset is None or onset > as_of:
        return None
    phase = duration_phase((as_of - onset).days / 7, kb)
    return phase.id if phase else None


def update_policy(
    uow: UnitOfWork, actor: Actor, *, expected: int, reason: str, policy: Policy, now: datetime
) -> tuple[int, Policy]:
    version, _ = current_policy(uow)
    if expected != version:
        raise records.VersionConflict("policy", expected, version)
    uow.policy.add(version + 1, _json(policy), now, actor.username, reason)
    return version + 1, policy


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


def safety_events(sessions: Sequence[Record], kb: Knowledge) -> list[SafetyEvent]:
    """The safety events of stored sessions (a dose over a limit, with what to watch for)."""
    bounds = load_integrity()
    found = (dose_safety_event(str(r.id), r.current.data, kb, bounds) for r in sessions)
    return [e for e in found if e is not None]


__all__ = [
    "ADMIT",
    "Change",
    "Write",
    "correct",
    "create",
    "current_policy",
    "episode_phase",
    "patient_index",
    "reassess",
    "safety_events",
    "update_policy",
]
