"""Clinical records under /api/v1, generated from one table of record kinds.

:data:`KINDS_TABLE` describes each kind once: its path, its parent, its request and
response schemas, the use cases that create and correct it, and (by convention) its
audit action names ``<kind>.<verb>``, whose roles are :data:`services.auth.PERMISSIONS`.
From it every kind gets the same routes::

    POST   /<parent>/{<parent>_id}/<path>   create (201)          <kind>.create
    GET    /<parent>/{<parent>_id}/<path>   list (paginated)      <kind>.list
    GET    /<path>/{record_id}              read                  <kind>.read
    PUT    /<path>/{record_id}              correct (new version) <kind>.correct
    POST   /<path>/{record_id}/retract      entered in error      <kind>.retract
    GET    /<path>/{record_id}/history      every version         <kind>.history
    POST   /<path>/{record_id}/sign         (routes_signatures)   <kind>.sign
    POST   /<path>/{record_id}/attest       (sessions)            <kind>.attest

Every response that carries one record has ``ETag: "<version>"``; ``If-Match`` on PUT,
retract, sign and attest is checked against the current version (412 on mismatch),
alongside the ``version`` in the JSON body (409 on mismatch). Every route is one audited
call; every clinical write goes through the safety kernel (services.kernel).

(No ``from __future__ import annotations`` here: the route factory builds annotations
from local variables, which FastAPI must be able to evaluate.)
"""

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Path, Query, Response
from pydantic import BaseModel, BeforeValidator

from triggerpath.domain.course import evaluate_course
from triggerpath.domain.recommendation import Recommendation
from triggerpath.entrypoints.api import schemas as s
from triggerpath.entrypoints.api.deps import AppState, Paging, State, action
from triggerpath.entrypoints.api.problems import PROBLEM_JSON, PROBLEM_RESPONSES, Problem
from triggerpath.errors import Conflict
from triggerpath.services import auth, clinical, episodes, records
from triggerpath.services.audit import AuditNote, Call
from triggerpath.services.model import Kind, PatientSearch, Record
from triggerpath.services.payloads import (
    AssessmentIn,
    AttestationIn,
    DocumentData,
    DocumentIn,
    EpisodeData,
    OutcomeData,
    PatientData,
    PlanIn,
    Retraction,
    SessionIn,
)
from triggerpath.services.uow import UnitOfWork

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)

IncludeRetracted = Annotated[bool, Query(description="also list records entered in error")]
IfMatch = Annotated[
    str | None,
    Header(
        max_length=200,
        description='the ETag you read ("3"); if the record has moved on: 412, nothing written',
    ),
]
PRECONDITION: dict[int | str, dict[str, Any]] = {
    412: {
        "model": Problem,
        "description": "Precondition failed (If-Match is not the current version)",
        "content": {PROBLEM_JSON: {}},
    }
}

#: create(uow, note, call, state, parent_id, body) -> Record
Create = Callable[[UnitOfWork, AuditNote, Call, AppState, UUID | None, Any], Record]
#: correct(uow, note, call, state, record_id, body, if_match) -> Record
Correct = Callable[[UnitOfWork, AuditNote, Call, AppState, UUID, Any, str | None], Record]


@dataclass(frozen=True)
class KindRoutes:
    """One record kind, described once; the routes are generated from it."""

    kind: Kind
    path: str
    tag: str
    public: type[BaseModel]
    view: Callable[[Record, AppState], Any]
    body: type[BaseModel]
    create: Create
    create_doc: str
    correction: type[BaseModel] | None = None
    correct: Correct | None = None
    correct_doc: str = ""
    parent_path: str | None = None  # "patients" -> POST /patients/{patient_id}/<path>
    parent_param: str | None = None

    def action(self, verb: str) -> str:
        name = f"{self.kind}.{verb}"
        assert name in auth.PERMISSIONS, f"{name} has no entry in services.auth.PERMISSIONS"
        return name

    def roles(self, verb: str) -> str:
        return ", ".join(sorted(auth.PERMISSIONS[self.action(verb)]))


# --------------------------------------------------------------------------- use cases
def _create_patient(
    uow: UnitOfWork, note: AuditNote, call: Call, state: AppState, _p: UUID | None, body: Any
) -> Record:
    return clinical.create_patient(uow, note, call.actor, body, call.now)


def _correct_patient(
    uow: UnitOfWork, note: AuditNote, call: Call, st: AppState, rid: UUID, body: Any, im: str | None
) -> Record:
    return clinical.correct_patient(
        uow,
        note,
        call.actor,
        rid,
        expected=body.version,
        reason=body.reason,
        data=body.data,
        now=call.now,
        if_match=im,
    )


def _create_episode(
    uow: UnitOfWork, note: AuditNote, call: Call, state: AppState, pid: UUID | None, body: Any
) -> Record:
    assert pid is not None
    return clinical.record_episode(uow, note, call.actor, pid, body, call.now)


def _correct_episode(
    uow: UnitOfWork, note: AuditNote, call: Call, st: AppState, rid: UUID, body: Any, im: str | None
) -> Record:
    return clinical.correct_episode(
        uow,
        note,
        call.actor,
        rid,
        expected=body.version,
        reason=body.reason,
        data=body.data,
        now=call.now,
        if_match=im,
    )


def _create_assessment(
    uow: UnitOfWork, note: AuditNote, call: Call, state: AppState, pid: UUID | None, body: Any
) -> Record:
    assert pid is not None
    return clinical.record_assessment(
        uow, note, call.actor, pid, body, state.kb, today=state.today(), now=call.now
    )


def _correct_assessment(
    uow: UnitOfWork, note: AuditNote, call: Call, st: AppState, rid: UUID, body: Any, im: str | None
) -> Record:
    return clinical.correct_assessment(
        uow,
        note,
        call.actor,
        rid,
        body.data,
        st.kb,
        expected=body.version,
        reason=body.reason,
        today=st.today(),
        now=call.now,
        if_match=im,
    )


def _create_plan(
    uow: UnitOfWork, note: AuditNote, call: Call, state: AppState, pid: UUID | None, body: Any
) -> Record:
    assert pid is not None
    return clinical.record_plan(
        uow, note, call.actor, pid, body, state.kb, call.now, today=state.today()
    )


def _correct_plan(
    uow: UnitOfWork, note: AuditNote, call: Call, st: AppState, rid: UUID, body: Any, im: str | None
) -> Record:
    return clinical.correct_plan(
        uow,
        note,
        call.actor,
        rid,
        body.data,
        st.kb,
        expected=body.version,
        reason=body.reason,
        now=call.now,
        today=st.today(),
        if_match=im,
    )


def _create_session(
    uow: UnitOfWork, note: AuditNote, call: Call, state: AppState, pid: UUID | None, body: Any
) -> Record:
    assert pid is not None
    return clinical.record_session(uow, note, call.actor, pid, body, state.kb, call.now)


def _correct_session(
    uow: UnitOfWork, note: AuditNote, call: Call, st: AppState, rid: UUID, body: Any, im: str | None
) -> Record:
    return clinical.correct_session(
        uow,
        note,
        call.actor,
        rid,
        body.data,
        st.kb,
        expected=body.version,
        reason=body.reason,
        now=call.now,
        if_match=im,
    )


def _create_outcome(
    uow: UnitOfWork, note: AuditNote, call: Call, state: AppState, pid: UUID | None, body: Any
) -> Record:
    assert pid is not None
    return clinical.record_outcome(uow, note, call.actor, pid, body, call.now, kb=state.kb)


def _correct_outcome(
    uow: UnitOfWork, note: AuditNote, call: Call, st: AppState, rid: UUID, body: Any, im: str | None
) -> Record:
    return clinical.correct_outcome(
        uow,
        note,
        call.actor,
        rid,
        body.data,
        expected=body.version,
        reason=body.reason,
        now=call.now,
        kb=st.kb,
        if_match=im,
    )


def _create_document(
    uow: UnitOfWork, note: AuditNote, call: Call, state: AppState, pid: UUID | None, body: Any
) -> Record:
    assert pid is not None
    return clinical.record_document(uow, note, call.actor, pid, body, call.now)


def _plain(view: Callable[[Record], Any]) -> Callable[[Record, AppState], Any]:
    return lambda r, _state: view(r)


KINDS_TABLE: tuple[KindRoutes, ...] = (
    KindRoutes(
        "patient",
        "patients",
        "patients",
        s.PatientPublic,
        _plain(s.patient_view),
        PatientData,
        _create_patient,
        "Register a patient: family_name, given_name, birth_date (YYYY-MM-DD), sex "
        "(female, male, other, unknown; no default) and the local mrn. Names and date of "
        "birth are required unless the clinic policy patient_identifiers is 'minimal'; "
        "names: letters, spaces, ' - . only; birth_date not in the future nor over 125 "
        "years ago.",
        s.PatientCorrection,
        _correct_patient,
        "Correct a patient: a new version with the reason; send the version you read.",
    ),
    KindRoutes(
        "episode",
        "episodes",
        "episodes",
        s.EpisodePublic,
        lambda r, st: s.episode_view(r, st.kb, st.today()),
        EpisodeData,
        _create_episode,
        "Open an episode of care (regions, onset; the phase is derived).",
        s.EpisodeCorrection,
        _correct_episode,
        "Correct an episode: onset and dates are checked again.",
        "patients",
        "patient_id",
    ),
    KindRoutes(
        "assessment",
        "assessments",
        "assessments",
        s.AssessmentPublic,
        _plain(s.assessment_view),
        AssessmentIn,
        _create_assessment,
        "Record an assessment: runs the engine and keeps input, result, knowledge version.",
        s.AssessmentCorrection,
        _correct_assessment,
        "Correct an unsigned assessment: the engine runs again on the corrected input; "
        "its plans become stale until re-planned.",
        "episodes",
        "episode_id",
    ),
    KindRoutes(
        "plan",
        "plans",
        "plans",
        s.PlanPublic,
        _plain(s.plan_view),
        PlanIn,
        _create_plan,
        "Plan from the stored assessment with the planner's own file shape (targets, "
        "injectate, prior_24h, acknowledged_cautions, steroid). The 24-hour ledger adds the "
        "patient's recorded sessions; only a `ready` plan is stored, anything else is 422 with "
        "the planner's issues.",
        s.PlanCorrection,
        _correct_plan,
        "Re-plan: the planner runs again on the assessment as it now stands (clears stale).",
        "assessments",
        "assessment_id",
    ),
    KindRoutes(
        "session",
        "sessions",
        "sessions",
        s.SessionPublic,
        _plain(s.session_view),
        SessionIn,
        _create_session,
        "Record a procedure session as performed (sites, agents, volumes, mg, complications). "
        "Checked against the 24-hour ledger: over a limit needs `exceedance_reason` and is "
        "stored with `dose_exceeded: true`; implausible amounts are refused.",
        s.SessionCorrection,
        _correct_session,
        "Correct a session: checked again against the ledger (without its old version).",
        "episodes",
        "episode_id",
    ),
    KindRoutes(
        "outcome",
        "outcomes",
        "outcomes",
        s.OutcomePublic,
        _plain(s.outcome_view),
        OutcomeData,
        _create_outcome,
        "Record an outcome measurement, in its instrument's range and not in the future.",
        s.OutcomeCorrection,
        _correct_outcome,
        "Correct an outcome measurement.",
        "episodes",
        "episode_id",
    ),
    KindRoutes(
        "document",
        "documents",
        "documents",
        s.DocumentPublic,
        _plain(s.document_view),
        DocumentIn,
        _create_document,
        "Keep a generated document (report, leaflet, letter) with the patient's record.",
        parent_path="patients",
        parent_param="patient_id",
    ),
)
SPECS: dict[Kind, KindRoutes] = {k.kind: k for k in KINDS_TABLE}


def _with_etag(response: Response, record: Record, view: Any) -> Any:
    response.headers["ETag"] = records.etag(record)
    return view


# --------------------------------------------------------------------------- factories
ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _iso_date(value: object) -> object:
    """Only a calendar date YYYY-MM-DD: pydantic would read a bare number as a timestamp."""
    if isinstance(value, str) and not ISO_DATE.match(value):
        raise ValueError("must be a date YYYY-MM-DD")
    return value


def _create_route(k: KindRoutes) -> None:
    """POST under the parent (or at the root for patients): the kind's create use case."""
    body_type = k.body
    where = f"/{k.parent_path}/{{{k.parent_param}}}/{k.path}" if k.parent_path else f"/{k.path}"
    meta: dict[str, Any] = {
        "status_code": 201,
        "response_model": k.public,
        "tags": [k.tag],
        "name": f"create_{k.kind}",
        "description": f"{k.create_doc}\n\nRoles: {k.roles('create')}.",
    }

    def run(call: Call, state: AppState, response: Response, pid: UUID | None, body: Any) -> Any:
        def work(uow: UnitOfWork, note: AuditNote) -> Any:
            record = k.create(uow, note, call, state, pid, body)
            return _with_etag(response, record, k.view(record, state))

        return call.run(work)

    if k.parent_param is None:

        @router.post(where, **meta)
        def create_root(
            body: body_type,  # type: ignore[valid-type]
            state: State,
            response: Response,
            call: Annotated[Call, action(k.action("create"))],
        ) -> Any:
            return run(call, state, response, None, body)

        return

    @router.post(where, **meta)
    def create(
        parent_id: Annotated[UUID, Path(alias=k.parent_param)],
        body: body_type,  # type: ignore[valid-type]
        state: State,
        response: Response,
        call: Annotated[Call, action(k.action("create"))],
    ) -> Any:
        return run(call, state, response, parent_id, body)


def _page(
    call: Call,
    state: AppState,
    kind: Kind,
    paging: Any,
    parent_id: UUID | None = None,
    include_retracted: bool = False,
    search: PatientSearch | None = None,
) -> Any:
    def run(uow: UnitOfWork, note: AuditNote) -> dict[str, Any]:
        items, total = records.list_(
            uow,
            note,
            kind,
            paging,
            parent_id=parent_id,
            include_retracted=include_retracted,
            search=search,
        )
        view = SPECS[kind].view
        return s.page_of([view(r, state) for r in items], total, paging)

    return call.run(run)


def _list_route(k: KindRoutes) -> None:
    """GET under the parent, paginated (patients: at the root, found by name, date of birth
    or exact MRN)."""
    meta: dict[str, Any] = {
        "response_model": s.Page[k.public],  # type: ignore[name-defined]
        "tags": [k.tag],
        "name": f"list_{k.path}",
    }
    if k.parent_param is None:

        @router.get(f"/{k.path}", **meta)
        def list_root(
            state: State,
            paging: Paging,
            call: Annotated[Call, action(k.action("list"))],
            include_retracted: IncludeRetracted = False,
            mrn: Annotated[
                str | None, Query(min_length=1, max_length=64, description="find by exact MRN")
            ] = None,
            name: Annotated[
                str | None,
                Query(
                    min_length=1,
                    max_length=201,
                    description="find by name: every word in the family or given names "
                    "(case and accents ignored)",
                ),
            ] = None,
            birth_date: Annotated[
                date | None,
                BeforeValidator(_iso_date),
                Query(description="find by date of birth, YYYY-MM-DD"),
            ] = None,
        ) -> Any:
            search = PatientSearch(name=name, birth_date=birth_date, mrn=mrn)
            return _page(
                call, state, k.kind, paging, include_retracted=include_retracted, search=search
            )

        return

    @router.get(f"/{k.parent_path}/{{{k.parent_param}}}/{k.path}", **meta)
    def list_children(
        parent_id: Annotated[UUID, Path(alias=k.parent_param)],
        state: State,
        paging: Paging,
        call: Annotated[Call, action(k.action("list"))],
        include_retracted: IncludeRetracted = False,
    ) -> Any:
        return _page(call, state, k.kind, paging, parent_id, include_retracted)


def _correct_route(k: KindRoutes) -> None:
    """PUT: a new version with a reason; ``If-Match`` and the JSON ``version`` both checked."""
    if k.correction is None or k.correct is None:
        return
    body_type = k.correction
    correct = k.correct

    @router.put(
        f"/{k.path}/{{record_id}}",
        response_model=k.public,
        tags=[k.tag],
        name=f"correct_{k.kind}",
        description=f"{k.correct_doc}\n\nRoles: {k.roles('correct')}.",
        responses=PRECONDITION,
    )
    def correct_route(
        record_id: UUID,
        body: body_type,  # type: ignore[valid-type]
        state: State,
        response: Response,
        call: Annotated[Call, action(k.action("correct"))],
        if_match: IfMatch = None,
    ) -> Any:
        def work(uow: UnitOfWork, note: AuditNote) -> Any:
            record = correct(uow, note, call, state, record_id, body, if_match)
            return _with_etag(response, record, k.view(record, state))

        return call.run(work)


def _read_routes(k: KindRoutes) -> None:
    """GET one record (with its ETag) and its history."""

    @router.get(
        f"/{k.path}/{{record_id}}",
        response_model=k.public,
        operation_id=f"get_{k.kind}",
        summary=f"Read a {k.kind}",
        tags=[k.tag],
    )
    def read(
        record_id: UUID,
        state: State,
        response: Response,
        call: Annotated[Call, action(k.action("read"))],
    ) -> Any:
        def work(uow: UnitOfWork, note: AuditNote) -> Any:
            record = records.get(uow, note, k.kind, record_id)
            return _with_etag(response, record, k.view(record, state))

        return call.run(work)

    @router.get(
        f"/{k.path}/{{record_id}}/history",
        response_model=s.History,
        operation_id=f"get_{k.kind}_history",
        summary=f"Every version of a {k.kind}, with who, when and why",
        tags=[k.tag],
    )
    def history(record_id: UUID, call: Annotated[Call, action(k.action("history"))]) -> s.History:
        return call.run(
            lambda uow, note: s.history_view(*records.history(uow, note, k.kind, record_id))
        )


#: verb -> (summary, body model, use case(uow, note, call, record_id, body, if_match))
Transition = Callable[[UnitOfWork, AuditNote, Call, UUID, Any, str | None], Record]


def _transition_route(
    k: KindRoutes, verb: str, summary: str, body_type: Any, fn: Transition
) -> None:
    """POST /<path>/{record_id}/<verb>: retract, sign or attest, with If-Match."""

    @router.post(
        f"/{k.path}/{{record_id}}/{verb}",
        response_model=k.public,
        operation_id=f"{verb}_{k.kind}",
        summary=summary,
        tags=[k.tag],
        description=f"Roles: {k.roles(verb)}.",
        responses=PRECONDITION,
    )
    def transition(
        record_id: UUID,
        body: body_type,
        state: State,
        response: Response,
        call: Annotated[Call, action(k.action(verb))],
        if_match: IfMatch = None,
    ) -> Any:
        def work(uow: UnitOfWork, note: AuditNote) -> Any:
            record = fn(uow, note, call, record_id, body, if_match)
            return _with_etag(response, record, k.view(record, state))

        return call.run(work)


def _retract(kind: Kind) -> Transition:
    return lambda uow, note, call, rid, body, im: records.retract(
        uow,
        note,
        call.actor,
        kind,
        rid,
        expected=body.version,
        reason=body.reason,
        now=call.now,
        if_match=im,
    )


def _attest(
    uow: UnitOfWork, note: AuditNote, call: Call, rid: UUID, body: Any, im: str | None
) -> Record:
    return records.attest(
        uow, note, call.actor, rid, expected=body.version, now=call.now, if_match=im
    )


def _routes(k: KindRoutes) -> None:
    """Every route of one kind, in the order the OpenAPI document lists them."""
    _create_route(k)
    _list_route(k)
    _correct_route(k)
    _read_routes(k)
    _transition_route(
        k,
        "retract",
        f"Mark a {k.kind} entered in error (it stays in the history)",
        Retraction,
        _retract(k.kind),
    )
    if k.kind == "session":
        _transition_route(
            k,
            "attest",
            "The performer attests a session recorded for them by someone else",
            AttestationIn,
            _attest,
        )


for _kind in KINDS_TABLE:
    _routes(_kind)


# --------------------------------------------------------------------------- beyond the table
@router.get(
    "/episodes/{episode_id}/course",
    response_model=s.EpisodeCourse,
    tags=["episodes"],
)
def episode_course(
    episode_id: UUID,
    state: State,
    call: Annotated[Call, action("episode.course")],
    as_of: Annotated[
        date | None,
        BeforeValidator(_iso_date),
        Query(description="the date to compute for, YYYY-MM-DD (default today)"),
    ] = None,
) -> s.EpisodeCourse:
    """The course of TPIs from the stored sessions and follow-ups (computed, not stored):
    response, session limits, reassessment due, the re-evaluation worksheet on failure, and
    the safety events (sessions recorded over a dose limit)."""

    def run(uow: UnitOfWork, note: AuditNote) -> s.EpisodeCourse:
        bundle = episodes.load_bundle(uow, note, episode_id)
        episode = episodes.course_episode(bundle, state.kb)
        if episode is None:
            raise Conflict("the episode has no assessment yet: record one before its course")
        _, policy = clinical.current_policy(uow)
        report = evaluate_course(episode, state.kb, as_of=as_of or state.today(), policy=policy)
        events = clinical.safety_events(bundle.sessions, state.kb)
        return s.EpisodeCourse(**dict(report), safety_events=events)

    return call.run(run)


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
