"""Helpers the web views share: the posted form (CSRF checked), the records of an episode,
the course report, the plan rebuilt from its stored planner input, document responses."""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from triggerpath.adapters import documents as docs
from triggerpath.domain.course import CourseReport, check_episode, evaluate_course
from triggerpath.domain.identity import age_on
from triggerpath.domain.planning import ProcedurePlan, plan_procedure
from triggerpath.entrypoints.api.deps import AppState, get_state
from triggerpath.entrypoints.web import forms
from triggerpath.entrypoints.web.support import (
    BadCsrf,
    Web,
    WebSession,
    page,
)
from triggerpath.errors import FieldProblem, InvalidInput
from triggerpath.knowledge.loader import Knowledge
from triggerpath.services import auth, clinical, records
from triggerpath.services.audit import AuditNote
from triggerpath.services.banner import banner_of
from triggerpath.services.episodes import (
    Bundle,
    course_episode,
    load_bundle,
    plan_request_of,
)
from triggerpath.services.model import Kind, Record
from triggerpath.services.payloads import PatientData
from triggerpath.services.uow import UnitOfWork

StateDep = Annotated[AppState, Depends(get_state)]


async def posted(request: Request, web: Web) -> FormData:
    """The posted form, once its CSRF token is checked."""
    form = await request.form()
    presented = request.headers.get(auth.CSRF_HEADER) or form.get("csrf")
    if not isinstance(presented, str) or not auth.csrf_ok(
        web.state.secret_key, web.token, presented
    ):
        raise BadCsrf()
    return form


Posted = Annotated[FormData, Depends(posted)]


def bundle_page(
    request: Request,
    template: str,
    web: WebSession,
    b: Bundle,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page about one patient's episode: the records and the patient banner's data."""
    return page(request, template, web, status_code=status_code, b=b, pd=b.patient_data, **context)


def kb_of(web: WebSession) -> Knowledge:
    return web.state.kb


def age_of(pd: PatientData, on: date) -> int | None:
    """Completed years on ``on`` (the year of birth only, for records before 0006)."""
    if pd.birth_date is not None:
        return age_on(pd.birth_date, on)
    return on.year - pd.birth_year if pd.birth_year else None


def patient_line(web: WebSession, b: Bundle, weight: Any = None) -> docs.PatientLine:
    """The banner of every generated document, on the clinic policy's paper."""
    with web.state.uow_factory() as uow:
        _, policy = clinical.current_policy(uow)
    shown = banner_of(
        b.patient_data,
        b.assessments,
        kb_of(web),
        as_of=web.today,
        policy=policy.patient_identifiers,
    )
    return docs.patient_line_of(shown, policy.paper_size, weight)


def bundle_of(web: WebSession, episode_id: UUID, action: str = "episode.read") -> Bundle:
    b: Bundle = web.run(action, lambda uow, note: load_bundle(uow, note, episode_id))
    return b


def course_of(web: WebSession, b: Bundle) -> tuple[CourseReport | None, list[FieldProblem]]:
    episode = course_episode(b, kb_of(web))
    if episode is None:
        return None, []
    kb = kb_of(web)
    problems = check_episode(episode, kb, as_of=web.today)
    if problems:
        return None, problems
    with web.state.uow_factory() as uow:
        _, policy = clinical.current_policy(uow)
    return evaluate_course(episode, kb, as_of=web.today, policy=policy), []


def record_bundle(
    web: WebSession, kind: Kind, record_id: UUID, action: str
) -> tuple[Record, Bundle]:
    """A record of an episode (an assessment, a session) and the episode's records."""

    def run(uow: UnitOfWork, note: AuditNote) -> tuple[Record, Bundle]:
        r = records.get(uow, note, kind, record_id)
        assert r.parent_id is not None
        return r, load_bundle(uow, AuditNote(), r.parent_id)

    result: tuple[Record, Bundle] = web.run(action, run)
    return result


def assessment_bundle(web: WebSession, assessment_id: UUID, action: str) -> tuple[Record, Bundle]:
    return record_bundle(web, "assessment", assessment_id, action)


def run_plan(web: WebSession, b: Bundle, record: Record, pf: forms.PlanForm) -> ProcedurePlan:
    data = b.assessment(record)
    with web.state.uow_factory() as uow:
        _, policy = clinical.current_policy(uow)
    assert pf.injectate is not None
    return plan_procedure(
        data.input,
        pf.targets,
        pf.injectate,
        as_of=web.today,
        policy=policy,
        knowledge=kb_of(web),
        prior_24h=pf.prior_24h,
        acknowledged_cautions=pf.acknowledged,
        steroid=pf.steroid,
    )


def plan_context(
    web: WebSession, plan_id: UUID, action: str = "plan.read"
) -> tuple[Record, Record, Bundle, dict[str, Any], ProcedurePlan]:
    def run(uow: UnitOfWork, note: AuditNote) -> tuple[Record, Record, Bundle]:
        plan = records.get(uow, note, "plan", plan_id)
        assert plan.parent_id is not None
        a = records.get(uow, AuditNote(), "assessment", plan.parent_id)
        assert a.parent_id is not None
        return plan, a, load_bundle(uow, AuditNote(), a.parent_id)

    plan_record, a_record, b = web.run(action, run)
    req = plan_request_of(b.documents, plan_record.id)
    if req is None:
        raise InvalidInput.single(
            "plan", "this plan was not made with the planner (no planner input)"
        )
    pf, _ = forms.parse_plan_form(forms.plan_values(req))
    if pf is None:
        raise InvalidInput.single("plan", "the stored planner input no longer parses")
    data = b.assessment(a_record)
    with web.state.uow_factory() as uow:
        _, policy = clinical.current_policy(uow)
    assert pf.injectate is not None
    as_of = date.fromisoformat(req.get("as_of") or web.today.isoformat())
    plan = plan_procedure(
        data.input,
        pf.targets,
        pf.injectate,
        as_of=as_of,
        policy=policy,
        knowledge=kb_of(web),
        prior_24h=pf.prior_24h,
        acknowledged_cautions=pf.acknowledged,
        steroid=pf.steroid,
    )
    return plan_record, a_record, b, req, plan


def doc_response(doc: docs.Document, fmt: str) -> Response:
    if fmt == "pdf":
        return Response(
            docs.render_pdf(doc),
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'inline; filename="{doc.filename_stem}.pdf"',
                "X-Content-Type-Options": "nosniff",
            },
        )
    return HTMLResponse(doc.html)


def plan_json(plan: ProcedurePlan) -> dict[str, Any]:
    dose = plan.dose
    return {
        "status": plan.status,
        "headline": plan.headline,
        "issues": [i.model_dump(mode="json") for i in plan.issues],
        "missing_acknowledgements": plan.acknowledgements.missing,
        "required_acknowledgements": plan.acknowledgements.required,
        "caution_texts": {c.code: c.text for c in plan.cautions},
        "cautions": [c.model_dump(mode="json") for c in plan.cautions],
        "hazards": sorted({h.id for t in plan.targets for h in t.hazards}),
        "injectate": plan.injectate.model_dump(mode="json") if plan.injectate else None,
        "dose": None
        if dose is None
        else {
            "level": dose.level,
            "headline": dose.headline,
            "fraction": float(dose.fraction),
            "percent_of_max": math.ceil(float(dose.fraction) * 1000) / 10,
            "weight": dose.weight.model_dump(mode="json"),
            "agents": [a.model_dump(mode="json") for a in dose.agents],
            "daily": [d.model_dump(mode="json") for d in dose.daily],
            "solutions": [s.model_dump(mode="json") for s in dose.solutions],
            "toxicity": dose.toxicity.model_dump(mode="json"),
        },
    }
