"""Clinical records under /api/v1: patients, episodes, assessments, plans, sessions,
outcomes and documents.

Each kind has: create (under its parent), list (under its parent, paginated), read,
correct (PUT: new version with a reason), retract (entered in error), history; and
assessments and plans can be signed. Every route is one audited call.

(No ``from __future__ import annotations`` here: the route factory builds annotations
from local variables, which FastAPI must be able to evaluate.)
"""

import base64
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from triggerpath.domain.course import CourseReport, evaluate_course
from triggerpath.domain.recommendation import Recommendation
from triggerpath.entrypoints.api import schemas as s
from triggerpath.entrypoints.api.deps import AppState, Paging, State, action
from triggerpath.entrypoints.api.problems import PROBLEM_RESPONSES
from triggerpath.errors import Conflict
from triggerpath.services import clinical, episodes, records
from triggerpath.services.audit import AuditNote, Call
from triggerpath.services.model import SIGNABLE, Kind, Record
from triggerpath.services.payloads import (
    AssessmentIn,
    DocumentData,
    DocumentIn,
    EpisodeData,
    OutcomeData,
    PatientData,
    PlanData,
    Retraction,
    SessionIn,
    Signature,
)
from triggerpath.services.uow import UnitOfWork

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)

IncludeRetracted = Annotated[bool, Query(description="also list records entered in error")]


def _view(kind: Kind, state: AppState) -> Callable[[Record], Any]:
    views: dict[Kind, Callable[[Record], Any]] = {
        "patient": s.patient_view,
        "episode": lambda r: s.episode_view(r, state.kb, state.today()),
        "assessment": s.assessment_view,
        "plan": s.plan_view,
        "session": s.session_view,
        "outcome": s.outcome_view,
        "document": s.document_view,
    }
    return views[kind]


def _page(
    call: Call,
    state: AppState,
    kind: Kind,
    paging: Any,
    parent_id: UUID | None = None,
    include_retracted: bool = False,
    mrn: str | None = None,
) -> Any:
    def run(uow: UnitOfWork, note: AuditNote) -> dict[str, Any]:
        items, total = records.list_(
            uow,
            note,
            kind,
            paging,
            parent_id=parent_id,
            mrn=mrn,
            include_retracted=include_retracted,
        )
        view = _view(kind, state)
        return {
            "items": [view(r) for r in items],
            "total": total,
            "limit": paging.limit,
            "offset": paging.offset,
        }

    return call.run(run)


def _record_routes(kind: Kind, path: str, public: type[BaseModel], tag: str) -> None:
    """read, history, retract (and sign) for one kind: the same for every kind."""

    @router.get(
        f"/{path}/{{record_id}}",
        response_model=public,
        operation_id=f"get_{kind}",
        summary=f"Read a {kind}",
        tags=[tag],
    )
    def read(record_id: UUID, state: State, call: Annotated[Call, action(f"{kind}.read")]) -> Any:
        return call.run(
            lambda uow, note: _view(kind, state)(records.get(uow, note, kind, record_id))
        )

    @router.get(
        f"/{path}/{{record_id}}/history",
        response_model=s.History,
        operation_id=f"get_{kind}_history",
        summary=f"Every version of a {kind}, with who, when and why",
        tags=[tag],
    )
    def history(record_id: UUID, call: Annotated[Call, action(f"{kind}.history")]) -> s.History:
        return call.run(
            lambda uow, note: s.history_view(*records.history(uow, note, kind, record_id))
        )

    @router.post(
        f"/{path}/{{record_id}}/retract",
        response_model=public,
        operation_id=f"retract_{kind}",
        summary=f"Mark a {kind} entered in error (it stays in the history)",
        tags=[tag],
    )
    def retract(
        record_id: UUID,
        body: Retraction,
        state: State,
        call: Annotated[Call, action(f"{kind}.retract")],
    ) -> Any:
        return call.run(
            lambda uow, note: _view(kind, state)(
                records.retract(
                    uow,
                    note,
                    call.actor,
                    kind,
                    record_id,
                    expected=body.version,
                    reason=body.reason,
                    now=call.now,
                )
            )
        )

    if kind in SIGNABLE:

        @router.post(
            f"/{path}/{{record_id}}/sign",
            response_model=public,
            operation_id=f"sign_{kind}",
            summary=f"Sign a {kind} (clinicians); its content is then immutable",
            tags=[tag],
        )
        def sign(
            record_id: UUID,
            body: Signature,
            state: State,
            call: Annotated[Call, action(f"{kind}.sign")],
        ) -> Any:
            return call.run(
                lambda uow, note: _view(kind, state)(
                    records.sign(
                        uow,
                        note,
                        call.actor,
                        kind,
                        record_id,
                        expected=body.version,
                        now=call.now,
                    )
                )
            )


# --------------------------------------------------------------------------- patients
@router.post("/patients", status_code=201, response_model=s.PatientPublic, tags=["patients"])
def create_patient(
    body: PatientData, call: Annotated[Call, action("patient.create")]
) -> s.PatientPublic:
    """Register a patient: local MRN, year of birth, sex (nothing more is kept)."""
    return call.run(
        lambda uow, note: s.patient_view(
            clinical.create_patient(uow, note, call.actor, body, call.now)
        )
    )


@router.get("/patients", response_model=s.Page[s.PatientPublic], tags=["patients"])
def list_patients(
    state: State,
    paging: Paging,
    call: Annotated[Call, action("patient.list")],
    include_retracted: IncludeRetracted = False,
    mrn: Annotated[
        str | None, Query(min_length=1, max_length=64, description="find by exact MRN")
    ] = None,
) -> Any:
    return _page(call, state, "patient", paging, include_retracted=include_retracted, mrn=mrn)


@router.put("/patients/{record_id}", response_model=s.PatientPublic, tags=["patients"])
def correct_patient(
    record_id: UUID,
    body: s.PatientCorrection,
    call: Annotated[Call, action("patient.correct")],
) -> s.PatientPublic:
    """Correct a patient: a new version with the reason; send the version you read."""
    return call.run(
        lambda uow, note: s.patient_view(
            clinical.correct_patient(
                uow,
                note,
                call.actor,
                record_id,
                expected=body.version,
                reason=body.reason,
                data=body.data,
                now=call.now,
            )
        )
    )


_record_routes("patient", "patients", s.PatientPublic, "patients")


# --------------------------------------------------------------------------- episodes
@router.post(
    "/patients/{patient_id}/episodes",
    status_code=201,
    response_model=s.EpisodePublic,
    tags=["episodes"],
)
def create_episode(
    patient_id: UUID,
    body: EpisodeData,
    state: State,
    call: Annotated[Call, action("episode.create")],
) -> s.EpisodePublic:
    """Open an episode of care (regions, onset; the phase is derived)."""
    return call.run(
        lambda uow, note: s.episode_view(
            records.create(
                uow,
                note,
                call.actor,
                "episode",
                body.model_dump(mode="json"),
                now=call.now,
                parent_id=patient_id,
            ),
            state.kb,
            state.today(),
        )
    )


@router.get(
    "/patients/{patient_id}/episodes",
    response_model=s.Page[s.EpisodePublic],
    tags=["episodes"],
)
def list_episodes(
    patient_id: UUID,
    state: State,
    paging: Paging,
    call: Annotated[Call, action("episode.list")],
    include_retracted: IncludeRetracted = False,
) -> Any:
    return _page(call, state, "episode", paging, patient_id, include_retracted)


@router.put("/episodes/{record_id}", response_model=s.EpisodePublic, tags=["episodes"])
def correct_episode(
    record_id: UUID,
    body: s.EpisodeCorrection,
    state: State,
    call: Annotated[Call, action("episode.correct")],
) -> s.EpisodePublic:
    return call.run(
        lambda uow, note: s.episode_view(
            records.correct(
                uow,
                note,
                call.actor,
                "episode",
                record_id,
                expected=body.version,
                reason=body.reason,
                data=body.data.model_dump(mode="json"),
                now=call.now,
            ),
            state.kb,
            state.today(),
        )
    )


_record_routes("episode", "episodes", s.EpisodePublic, "episodes")


@router.get(
    "/episodes/{episode_id}/course",
    response_model=CourseReport,
    tags=["episodes"],
)
def episode_course(
    episode_id: UUID,
    state: State,
    call: Annotated[Call, action("episode.course")],
    as_of: Annotated[
        date | None, Query(description="the date to compute for (default today)")
    ] = None,
) -> CourseReport:
    """The course of TPIs from the stored sessions and follow-ups (computed, not stored):
    response, session limits, reassessment due, and the re-evaluation worksheet on failure."""

    def run(uow: UnitOfWork, note: AuditNote) -> CourseReport:
        bundle = episodes.load_bundle(uow, note, episode_id)
        episode = episodes.course_episode(bundle, state.kb)
        if episode is None:
            raise Conflict("the episode has no assessment yet: record one before its course")
        _, policy = clinical.current_policy(uow)
        return evaluate_course(episode, state.kb, as_of=as_of or state.today(), policy=policy)

    return call.run(run)


# --------------------------------------------------------------------------- assessments
@router.post(
    "/episodes/{episode_id}/assessments",
    status_code=201,
    response_model=s.AssessmentPublic,
    tags=["assessments"],
)
def create_assessment(
    episode_id: UUID,
    body: AssessmentIn,
    state: State,
    call: Annotated[Call, action("assessment.create")],
) -> s.AssessmentPublic:
    """Record an assessment: runs the engine and keeps input, result, knowledge version."""
    return call.run(
        lambda uow, note: s.assessment_view(
            clinical.record_assessment(
                uow,
                note,
                call.actor,
                episode_id,
                body,
                state.kb,
                today=state.today(),
                now=call.now,
            )
        )
    )


@router.get(
    "/episodes/{episode_id}/assessments",
    response_model=s.Page[s.AssessmentPublic],
    tags=["assessments"],
)
def list_assessments(
    episode_id: UUID,
    state: State,
    paging: Paging,
    call: Annotated[Call, action("assessment.list")],
    include_retracted: IncludeRetracted = False,
) -> Any:
    return _page(call, state, "assessment", paging, episode_id, include_retracted)


@router.put("/assessments/{record_id}", response_model=s.AssessmentPublic, tags=["assessments"])
def correct_assessment(
    record_id: UUID,
    body: s.AssessmentCorrection,
    state: State,
    call: Annotated[Call, action("assessment.correct")],
) -> s.AssessmentPublic:
    """Correct an unsigned assessment: the engine runs again on the corrected input."""
    return call.run(
        lambda uow, note: s.assessment_view(
            clinical.correct_assessment(
                uow,
                note,
                call.actor,
                record_id,
                body.data,
                state.kb,
                expected=body.version,
                reason=body.reason,
                today=state.today(),
                now=call.now,
            )
        )
    )


@router.post(
    "/assessments/{record_id}/reassess",
    response_model=Recommendation,
    tags=["assessments"],
)
def reassess(
    record_id: UUID,
    state: State,
    call: Annotated[Call, action("assessment.reassess")],
) -> Recommendation:
    """Run the stored input again with today's date, knowledge and policy (not stored)."""
    return call.run(
        lambda uow, note: clinical.reassess(uow, note, record_id, state.kb, today=state.today())
    )


_record_routes("assessment", "assessments", s.AssessmentPublic, "assessments")


# --------------------------------------------------------------------------- plans
@router.post(
    "/assessments/{assessment_id}/plans",
    status_code=201,
    response_model=s.PlanPublic,
    tags=["plans"],
)
def create_plan(
    assessment_id: UUID,
    body: PlanData,
    state: State,
    call: Annotated[Call, action("plan.create")],
) -> s.PlanPublic:
    return call.run(
        lambda uow, note: s.plan_view(
            clinical.record_plan(uow, note, call.actor, assessment_id, body, state.kb, call.now)
        )
    )


@router.get(
    "/assessments/{assessment_id}/plans",
    response_model=s.Page[s.PlanPublic],
    tags=["plans"],
)
def list_plans(
    assessment_id: UUID,
    state: State,
    paging: Paging,
    call: Annotated[Call, action("plan.list")],
    include_retracted: IncludeRetracted = False,
) -> Any:
    return _page(call, state, "plan", paging, assessment_id, include_retracted)


@router.put("/plans/{record_id}", response_model=s.PlanPublic, tags=["plans"])
def correct_plan(
    record_id: UUID,
    body: s.PlanCorrection,
    state: State,
    call: Annotated[Call, action("plan.correct")],
) -> s.PlanPublic:
    return call.run(
        lambda uow, note: s.plan_view(
            clinical.correct_plan(
                uow,
                note,
                call.actor,
                record_id,
                body.data,
                state.kb,
                expected=body.version,
                reason=body.reason,
                now=call.now,
            )
        )
    )


_record_routes("plan", "plans", s.PlanPublic, "plans")


# --------------------------------------------------------------------------- sessions
@router.post(
    "/episodes/{episode_id}/sessions",
    status_code=201,
    response_model=s.SessionPublic,
    tags=["sessions"],
)
def create_session(
    episode_id: UUID,
    body: SessionIn,
    state: State,
    call: Annotated[Call, action("session.create")],
) -> s.SessionPublic:
    """Record a procedure session as performed (sites, agents, volumes, mg, complications)."""
    return call.run(
        lambda uow, note: s.session_view(
            clinical.record_session(uow, note, call.actor, episode_id, body, state.kb, call.now)
        )
    )


@router.get(
    "/episodes/{episode_id}/sessions",
    response_model=s.Page[s.SessionPublic],
    tags=["sessions"],
)
def list_sessions(
    episode_id: UUID,
    state: State,
    paging: Paging,
    call: Annotated[Call, action("session.list")],
    include_retracted: IncludeRetracted = False,
) -> Any:
    return _page(call, state, "session", paging, episode_id, include_retracted)


@router.put("/sessions/{record_id}", response_model=s.SessionPublic, tags=["sessions"])
def correct_session(
    record_id: UUID,
    body: s.SessionCorrection,
    state: State,
    call: Annotated[Call, action("session.correct")],
) -> s.SessionPublic:
    return call.run(
        lambda uow, note: s.session_view(
            clinical.correct_session(
                uow,
                note,
                call.actor,
                record_id,
                body.data,
                state.kb,
                expected=body.version,
                reason=body.reason,
                now=call.now,
            )
        )
    )


_record_routes("session", "sessions", s.SessionPublic, "sessions")


# --------------------------------------------------------------------------- outcomes
@router.post(
    "/episodes/{episode_id}/outcomes",
    status_code=201,
    response_model=s.OutcomePublic,
    tags=["outcomes"],
)
def create_outcome(
    episode_id: UUID,
    body: OutcomeData,
    call: Annotated[Call, action("outcome.create")],
) -> s.OutcomePublic:
    return call.run(
        lambda uow, note: s.outcome_view(
            clinical.record_outcome(uow, note, call.actor, episode_id, body, call.now)
        )
    )


@router.get(
    "/episodes/{episode_id}/outcomes",
    response_model=s.Page[s.OutcomePublic],
    tags=["outcomes"],
)
def list_outcomes(
    episode_id: UUID,
    state: State,
    paging: Paging,
    call: Annotated[Call, action("outcome.list")],
    include_retracted: IncludeRetracted = False,
) -> Any:
    return _page(call, state, "outcome", paging, episode_id, include_retracted)


@router.put("/outcomes/{record_id}", response_model=s.OutcomePublic, tags=["outcomes"])
def correct_outcome(
    record_id: UUID,
    body: s.OutcomeCorrection,
    call: Annotated[Call, action("outcome.correct")],
) -> s.OutcomePublic:
    return call.run(
        lambda uow, note: s.outcome_view(
            clinical.correct_outcome(
                uow,
                note,
                call.actor,
                record_id,
                body.data,
                expected=body.version,
                reason=body.reason,
                now=call.now,
            )
        )
    )


_record_routes("outcome", "outcomes", s.OutcomePublic, "outcomes")


# --------------------------------------------------------------------------- documents
@router.post(
    "/patients/{patient_id}/documents",
    status_code=201,
    response_model=s.DocumentPublic,
    tags=["documents"],
)
def create_document(
    patient_id: UUID,
    body: DocumentIn,
    call: Annotated[Call, action("document.create")],
) -> s.DocumentPublic:
    """Keep a generated document (report, leaflet, letter) with the patient's record."""
    return call.run(
        lambda uow, note: s.document_view(
            clinical.record_document(uow, note, call.actor, patient_id, body, call.now)
        )
    )


@router.get(
    "/patients/{patient_id}/documents",
    response_model=s.Page[s.DocumentPublic],
    tags=["documents"],
)
def list_documents(
    patient_id: UUID,
    state: State,
    paging: Paging,
    call: Annotated[Call, action("document.list")],
    include_retracted: IncludeRetracted = False,
) -> Any:
    return _page(call, state, "document", paging, patient_id, include_retracted)


@router.get(
    "/documents/{record_id}/content",
    response_class=Response,
    tags=["documents"],
    responses={200: {"content": {"*/*": {}}, "description": "the file"}},
)
def document_content(record_id: UUID, call: Annotated[Call, action("document.read")]) -> Response:
    """The document itself, with its media type."""
    doc = call.run(
        lambda uow, note: DocumentData.model_validate(
            records.get(uow, note, "document", record_id).current.data
        )
    )
    return Response(
        base64.b64decode(doc.content_base64),
        media_type=doc.media_type,
        headers={"Content-Disposition": "attachment", "X-Content-Type-Options": "nosniff"},
    )


_record_routes("document", "documents", s.DocumentPublic, "documents")
