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
from triggerpath.services.model import PARENT_KIND, Kind, PatientSearch, Record
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
from triggerpath.services.records import Change, Write
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


@dataclass(frozen=True)
class KindRoutes:
    """One record kind, described once; the routes are generated from it."""

    kind: Kind
    path: str
    public: type[BaseModel]
    body: type[BaseModel]
    create_doc: str
    correction: type[BaseModel] | None = None
    correct_doc: str = ""
    view: Callable[[Record, AppState], Any] | None = None  # default: schemas.<kind>_view

    @property
    def parent_path(self) -> str | None:
        """``patients`` for an episode: it is created at ``POST /patients/{patient_id}/...``."""
        parent = PARENT_KIND[self.kind]
        return SPECS[parent].path if parent else None

    @property
    def parent_param(self) -> str | None:
        parent = PARENT_KIND[self.kind]
        return f"{parent}_id" if parent else None

    def show(self, record: Record, state: AppState) -> Any:
        if self.view is not None:
            return self.view(record, state)
        return getattr(s, f"{self.kind}_view")(record)

    def action(self, verb: str) -> str:
        name = f"{self.kind}.{verb}"
        assert name in auth.PERMISSIONS, f"{name} has no entry in services.auth.PERMISSIONS"
        return name

    def roles(self, verb: str) -> str:
        return ", ".join(sorted(auth.PERMISSIONS[self.action(verb)]))


def _write(uow: UnitOfWork, note: AuditNote, call: Call, state: AppState) -> Write:
    return Write(uow, note, call.actor, call.now, state.kb, state.today())


KINDS_TABLE: tuple[KindRoutes, ...] = (
    KindRoutes(
        "patient",
        "patients",
        s.PatientPublic,
        PatientData,
        "Register a patient: family_name, given_name, birth_date (YYYY-MM-DD), sex "
        "(female, male, other, unknown; no default) and the local mrn. Names and date of "
        "birth are required unless the clinic policy patient_identifiers is 'minimal'; "
        "names: letters, spaces, ' - . only; birth_date not in the future nor over 125 "
        "years ago.",
        s.PatientCorrection,
        "Correct a patient: a new version with the reason; send the version you read.",
    ),
    KindRoutes(
        "episode",
        "episodes",
        s.EpisodePublic,
        EpisodeData,
        "Open an episode of care (regions, onset; the phase is derived).",
        s.EpisodeCorrection,
        "Correct an episode: onset and dates are checked again.",
        lambda r, st: s.episode_view(r, st.kb, st.today()),
    ),
    KindRoutes(
        "assessment",
        "assessments",
        s.AssessmentPublic,
        AssessmentIn,
        "Record an assessment: runs the engine and keeps input, result, knowledge version.",
        s.AssessmentCorrection,
        "Correct an unsigned assessment: the engine runs again on the corrected input; "
        "its plans become stale until re-planned.",
    ),
    KindRoutes(
        "plan",
        "plans",
        s.PlanPublic,
        PlanIn,
        "Plan from the stored assessment with the planner's own file shape (targets, "
        "injectate, prior_24h, acknowledged_cautions, steroid). The 24-hour ledger adds the "
        "patient's recorded sessions; only a `ready` plan is stored, anything else is 422 with "
        "the planner's issues.",
        s.PlanCorrection,
        "Re-plan: the planner runs again on the assessment as it now stands (clears stale).",
    ),
    KindRoutes(
        "session",
        "sessions",
        s.SessionPublic,
        SessionIn,
        "Record a procedure session as performed (sites, agents, volumes, mg, complications). "
        "Checked against the 24-hour ledger: over a limit needs `exceedance_reason` and is "
        "stored with `dose_exceeded: true`; implausible amounts are refused.",
        s.SessionCorrection,
        "Correct a session: checked again against the ledger (without its old version).",
    ),
    KindRoutes(
        "outcome",
        "outcomes",
        s.OutcomePublic,
        OutcomeData,
        "Record an outcome measurement, in its instrument's range and not in the future.",
        s.OutcomeCorrection,
        "Correct an outcome measurement.",
    ),
    KindRoutes(
        "document",
        "documents",
        s.DocumentPublic,
        DocumentIn,
        "Keep a generated document (report, leaflet, letter) with the patient's record.",
    ),
)
SPECS: dict[Kind, KindRoutes] = {k.kind: k for k in KINDS_TABLE}
#: One use case on the call's write (create, correct, read, retract, sign, attest).
UseCase = Callable[[Write], Record]
#: A change to one record: use case(write, kind, record_id, change, body).
Changer = Callable[[Write, Kind, UUID, Change, Any], Record]
#: The router's decorator for one path and method (``router.put(...)``).
Route = Callable[[Callable[..., Any]], Callable[..., Any]]


# --------------------------------------------------------------------------- factories
ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _iso_date(value: object) -> object:
    """Only a calendar date YYYY-MM-DD: pydantic would read a bare number as a timestamp."""
    if isinstance(value, str) and not ISO_DATE.match(value):
        raise ValueError("must be a date YYYY-MM-DD")
    return value


def _one(k: KindRoutes, call: Call, state: AppState, response: Response, fn: UseCase) -> Any:
    """Run one audited use case that returns one record: the record's view, with its ETag."""

    def work(uow: UnitOfWork, note: AuditNote) -> Any:
        record = fn(_write(uow, note, call, state))
        response.headers["ETag"] = records.etag(record)
        return k.show(record, state)

    return call.run(work)


def _create_route(k: KindRoutes) -> None:
    """POST under the parent (or at the root for patients): the kind's create use case."""
    body_type = k.body
    where = f"/{k.parent_path}/{{{k.parent_param}}}/{k.path}" if k.parent_path else f"/{k.path}"
    meta: dict[str, Any] = {
        "status_code": 201,
        "response_model": k.public,
        "tags": [k.path],
        "name": f"create_{k.kind}",
        "description": f"{k.create_doc}\n\nRoles: {k.roles('create')}.",
    }
    caller = Annotated[Call, action(k.action("create"))]

    def run(call: Call, state: AppState, response: Response, pid: UUID | None, body: Any) -> Any:
        return _one(k, call, state, response, lambda w: clinical.create(w, k.kind, pid, body))

    if k.parent_param is None:

        @router.post(where, **meta)
        def create_root(body: body_type, state: State, response: Response, call: caller) -> Any:  # type: ignore[valid-type]
            return run(call, state, response, None, body)

        return

    @router.post(where, **meta)
    def create(
        parent_id: Annotated[UUID, Path(alias=k.parent_param)],
        body: body_type,  # type: ignore[valid-type]
        state: State,
        response: Response,
        call: caller,
    ) -> Any:
        return run(call, state, response, parent_id, body)


def _page(call: Call, state: AppState, k: KindRoutes, paging: Any, **query: Any) -> Any:
    def run(uow: UnitOfWork, note: AuditNote) -> dict[str, Any]:
        items, total = records.list_(uow, note, k.kind, paging, **query)
        return s.page_of([k.show(r, state) for r in items], total, paging)

    return call.run(run)


def _list_route(k: KindRoutes) -> None:
    """GET under the parent, paginated (patients: at the root, found by name, date of birth
    or exact MRN)."""
    meta: dict[str, Any] = {
        "response_model": s.Page[k.public],  # type: ignore[name-defined]
        "tags": [k.path],
        "name": f"list_{k.path}",
    }
    caller = Annotated[Call, action(k.action("list"))]
    if k.parent_param is None:

        @router.get(f"/{k.path}", **meta)
        def list_root(
            state: State,
            paging: Paging,
            call: caller,
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
            return _page(call, state, k, paging, include_retracted=include_retracted, search=search)

        return

    @router.get(f"/{k.parent_path}/{{{k.parent_param}}}/{k.path}", **meta)
    def list_children(
        parent_id: Annotated[UUID, Path(alias=k.parent_param)],
        state: State,
        paging: Paging,
        call: caller,
        include_retracted: IncludeRetracted = False,
    ) -> Any:
        return _page(
            call, state, k, paging, parent_id=parent_id, include_retracted=include_retracted
        )


def _read_routes(k: KindRoutes) -> None:
    """GET one record (with its ETag) and its history."""

    def get(suffix: str, model: Any, summary: str) -> Route:
        op = f"get_{k.kind}{suffix.replace('/', '_')}"
        at = f"/{k.path}/{{record_id}}{suffix}"
        return router.get(at, response_model=model, operation_id=op, summary=summary, tags=[k.path])

    @get("", k.public, f"Read a {k.kind}")
    def read(
        record_id: UUID,
        state: State,
        response: Response,
        call: Annotated[Call, action(k.action("read"))],
    ) -> Any:
        return _one(
            k, call, state, response, lambda w: records.get(w.uow, w.note, k.kind, record_id)
        )

    @get("/history", s.History, f"Every version of a {k.kind}, with who, when and why")
    def history(record_id: UUID, call: Annotated[Call, action(k.action("history"))]) -> s.History:
        return call.run(
            lambda uow, note: s.history_view(*records.history(uow, note, k.kind, record_id))
        )


def _transitions(k: KindRoutes) -> list[tuple[str, str, type[BaseModel], Changer]]:
    """(verb, summary, body, use case) of the POST /<path>/{record_id}/<verb> routes."""
    found: list[tuple[str, str, type[BaseModel], Changer]] = [
        (
            "retract",
            f"Mark a {k.kind} entered in error (it stays in the history)",
            Retraction,
            lambda w, kind, rid, change, _: records.retract(w, kind, rid, change),
        )
    ]
    if k.kind == "session":
        summary = "The performer attests a session recorded for them by someone else"
        found.append(
            ("attest", summary, AttestationIn, lambda w, _, rid, ch, __: records.attest(w, rid, ch))
        )
    return found


def _change_route(k: KindRoutes, verb: str, body_type: Any, fn: Changer, add: Route) -> None:
    """A new version of one record (``add`` is the router's PUT or POST decorator), with
    ``If-Match`` and the JSON ``version`` both checked."""

    @add
    def change_route(
        record_id: UUID,
        body: body_type,
        state: State,
        response: Response,
        call: Annotated[Call, action(k.action(verb))],
        if_match: IfMatch = None,
    ) -> Any:
        change = Change(body.version, getattr(body, "reason", ""), if_match)
        return _one(k, call, state, response, lambda w: fn(w, k.kind, record_id, change, body))


def _routes(k: KindRoutes) -> None:
    """Every route of one kind, in the order the OpenAPI document lists them."""
    _create_route(k)
    _list_route(k)
    changed: dict[str, Any] = {
        "response_model": k.public,
        "tags": [k.path],
        "responses": PRECONDITION,
    }
    if k.correction is not None:
        doc = f"{k.correct_doc}\n\nRoles: {k.roles('correct')}."
        put = router.put(
            f"/{k.path}/{{record_id}}", name=f"correct_{k.kind}", description=doc, **changed
        )
        correct: Changer = lambda w, kind, rid, change, body: clinical.correct(  # noqa: E731
            w, kind, rid, change, body.data
        )
        _change_route(k, "correct", k.correction, correct, put)
    _read_routes(k)
    for verb, summary, body, fn in _transitions(k):
        post = router.post(
            f"/{k.path}/{{record_id}}/{verb}",
            operation_id=f"{verb}_{k.kind}",
            summary=summary,
            description=f"Roles: {k.roles(verb)}.",
            **changed,
        )
        _change_route(k, verb, body, fn, post)


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
