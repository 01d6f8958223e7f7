"""The procedure planner with its live dose check, the plan view and the patient documents."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from triggerpath.adapters import documents as docs
from triggerpath.adapters.bodymap import HAZARD_ZONES, render_body_map
from triggerpath.domain.planning import ProcedurePlan
from triggerpath.entrypoints.web import forms
from triggerpath.entrypoints.web.common import (
    Posted,
    assessment_bundle,
    bundle_page,
    doc_response,
    kb_of,
    patient_line,
    plan_context,
    plan_json,
    run_plan,
)
from triggerpath.entrypoints.web.support import (
    PREFIX,
    Web,
    WebRoute,
    WebSession,
    cited_ids,
    redirect,
)
from triggerpath.errors import InvalidInput
from triggerpath.knowledge.loader import Knowledge
from triggerpath.services import clinical
from triggerpath.services.audit import AuditNote
from triggerpath.services.episodes import (
    PLAN_REQUEST_KIND,
    Bundle,
)
from triggerpath.services.model import Record
from triggerpath.services.payloads import (
    DocumentIn,
    PlanIn,
)
from triggerpath.services.records import Write
from triggerpath.services.uow import UnitOfWork

router = APIRouter(route_class=WebRoute, include_in_schema=False)
PATIENT_DOCS = ("consent", "aftercare", "exercises")


def _default_plan_values(b: Bundle, record: Record, kb: Knowledge) -> forms.Values:
    data = b.assessment(record)
    values: forms.Values = {}
    for i, tp in enumerate(data.input.trigger_points):
        m = kb.muscles.get(tp.muscle)
        values[f"targets[{i}].muscle"] = tp.muscle
        values[f"targets[{i}].side"] = tp.side
        values[f"targets[{i}].sites"] = "2" if tp.side == "bilateral" else "1"
        values[f"targets[{i}].volume_ml_per_site"] = str(m.volume_ml_max) if m else "1"
    values["injectate.solutions[0].agent"] = "lidocaine"
    values["injectate.solutions[0].percent"] = "1"
    values["injectate.solutions[0].parts"] = "1"
    values["injectate.saline_parts"] = "0"
    return values


#: the planner form's sections a refusal can point at (issue fields outside them go to "plan")
PLAN_SECTIONS = ("targets", "injectate", "prior_24h", "acknowledged_cautions", "steroid")


def refusal_errors(plan: ProcedurePlan) -> dict[str, list[str]]:
    """The planner's refusal shown beside the sections it concerns, in the planner's words
    with statement ids, and the headline under the save button (nothing is stored)."""
    blocking = [i for i in plan.issues if i.blocking] or list(plan.issues)
    errors = forms.issue_errors(blocking, PLAN_SECTIONS)
    errors.setdefault("plan", []).insert(0, f"Not saved: {plan.headline}")
    return errors


def _plan_page(
    request: Request,
    web: WebSession,
    record: Record,
    b: Bundle,
    values: forms.Values,
    errors: dict[str, list[str]],
    plan: ProcedurePlan | None,
    status_code: int = 200,
) -> HTMLResponse:
    kb = kb_of(web)
    data = b.assessment(record)
    targets = [
        (
            forms.one(values, f"targets[{i}].muscle"),
            forms.one(values, f"targets[{i}].side") or "left",
        )
        for i in forms._rows(values, "targets", "muscle")
    ]
    hazards = sorted({h.id for t in plan.targets for h in t.hazards}) if plan else []
    return bundle_page(
        request,
        "planner.html",
        web,
        b,
        status_code=status_code,
        record=record,
        data=data,
        values=values,
        errors=errors,
        plan=plan,
        kb=kb,
        target_rows=[
            i
            for i in forms._rows(values, "targets", "muscle")
            if forms.one(values, f"targets[{i}].muscle")
        ],
        body_map=render_body_map(
            kb,
            selected=[(tp.muscle, tp.side) for tp in data.input.trigger_points],
            targets=targets,
            hazards=list(HAZARD_ZONES),
            title="Posterior body map: pick injection targets",
        ),
        hazard_css=" ".join(f"#plan-map .hazard-{h}{{display:inline}}" for h in hazards),
        agents=kb.injectates.local_anesthetics,
        muscle_options=[(m.id, m.name) for m in kb.anatomy.muscles],
        agent_options=[(la.id, la.name) for la in kb.injectates.local_anesthetics],
        plan_json=json.dumps(plan_json(plan)) if plan else "null",
        steroids=kb.injectates.corticosteroids.agents,
        steroid_options=[(s.id, s.name) for s in kb.injectates.corticosteroids.agents],
        muscles_json=json.dumps(
            {
                m.id: {
                    "name": m.name,
                    "zones": m.referral_zones,
                    "volume": float(m.volume_ml_max),
                    "hazards": list(m.hazards),
                }
                for m in kb.anatomy.muscles
            }
        ),
        strengths_json=json.dumps(
            {
                la.id: {
                    "plain": [str(x) for x in la.marketed_percent.plain],
                    "epinephrine": [str(x) for x in la.marketed_percent.epinephrine],
                }
                for la in kb.injectates.local_anesthetics
            }
        ),
        draft_key=f"plan-{record.id}",
    )


@router.get(f"{PREFIX}/assessments/{{assessment_id}}/plan")
def planner_page(request: Request, web: Web, assessment_id: UUID) -> HTMLResponse:
    record, b = assessment_bundle(web, assessment_id, "assessment.read")
    values = _default_plan_values(b, record, kb_of(web))
    plan: ProcedurePlan | None = None
    errors: dict[str, list[str]] = {}
    pf, _ = forms.parse_plan_form(values)
    if pf is not None:
        try:
            plan = run_plan(web, b, record, pf)
        except InvalidInput as exc:
            errors = forms.Parsed(list(exc.problems)).errors()
    return _plan_page(request, web, record, b, values, errors, plan)


@router.post(f"{PREFIX}/api/assessments/{{assessment_id}}/plan-check")
def plan_check(web: Web, form: Posted, assessment_id: UUID) -> JSONResponse:
    """The live dose check: the planner's result for the form as it stands (nothing stored)."""
    values = forms.values_of(form)
    record, b = assessment_bundle(web, assessment_id, "compute.plan")
    pf, parsed = forms.parse_plan_form(values)
    if pf is None:
        return JSONResponse({"status": "invalid", "errors": parsed.errors()}, status_code=200)
    try:
        plan = run_plan(web, b, record, pf)
    except InvalidInput as exc:
        return JSONResponse(
            {"status": "invalid", "errors": forms.Parsed(list(exc.problems)).errors()}
        )
    return JSONResponse(plan_json(plan))


@router.post(f"{PREFIX}/assessments/{{assessment_id}}/plan")
def planner_submit(request: Request, web: Web, form: Posted, assessment_id: UUID) -> Response:
    web.call("plan.create").authorise()  # refuse before validating
    values = forms.values_of(form)
    record, b = assessment_bundle(web, assessment_id, "assessment.read")
    pf, parsed = forms.parse_plan_form(values)
    if pf is None:
        return _plan_page(request, web, record, b, values, parsed.errors(), None, 422)
    try:
        plan = run_plan(web, b, record, pf)
    except InvalidInput as exc:
        errors = forms.Parsed(list(exc.problems)).errors()
        return _plan_page(request, web, record, b, values, errors, None, 422)
    if plan.status != "ready":
        return _plan_page(request, web, record, b, values, refusal_errors(plan), plan, 422)
    kb = kb_of(web)
    assert pf.injectate is not None  # a ready plan had one
    plan_in = PlanIn(
        targets=pf.targets,
        injectate=pf.injectate,
        prior_24h=pf.prior_24h,
        acknowledged_cautions=pf.acknowledged,
        steroid=pf.steroid,
        planned_for=web.today,
    )
    request_json = {
        "targets": [t.model_dump(mode="json") for t in pf.targets],
        "injectate": pf.injectate.model_dump(mode="json") if pf.injectate else None,
        "prior_24h": [d.model_dump(mode="json") for d in pf.prior_24h],
        "acknowledged_cautions": pf.acknowledged,
        "steroid": pf.steroid.model_dump(mode="json") if pf.steroid else None,
        "as_of": web.today.isoformat(),
    }

    def run(uow: UnitOfWork, note: AuditNote) -> Record:
        w = Write(uow, note, web.actor, web.state.clock(), kb, web.today)
        plan_record = clinical.create(w, "plan", assessment_id, plan_in)
        content = json.dumps(request_json).encode()
        clinical.create(
            replace(w, note=AuditNote()),
            "document",
            plan_record.patient_id,
            DocumentIn(
                kind=PLAN_REQUEST_KIND,
                title="Procedure planner input",
                media_type="application/json",
                content_base64=base64.b64encode(content).decode(),
                source_id=plan_record.id,
                knowledge_version=kb.version,
            ),
        )
        return plan_record

    try:
        plan_record = web.run("plan.create", run)
    except InvalidInput as exc:  # the safety kernel refused it: nothing was stored
        errors = forms.refusal_errors(exc.problems)
        known = set(PLAN_SECTIONS) | set(values)
        for name in [n for n in errors if n not in known]:
            errors.setdefault("plan", []).extend(errors.pop(name))
        return _plan_page(request, web, record, b, values, errors, plan, 422)
    return redirect(f"{PREFIX}/plans/{plan_record.id}?saved=plan-{assessment_id}")


@router.get(f"{PREFIX}/plans/{{plan_id}}")
def plan_view(request: Request, web: Web, plan_id: UUID) -> HTMLResponse:
    plan_record, a_record, b, _, plan = plan_context(web, plan_id)
    kb = kb_of(web)
    return bundle_page(
        request,
        "plan.html",
        web,
        b,
        cited=cited_ids(plan),
        record=plan_record,
        assessment=a_record,
        plan=plan,
        kb=kb,
        body_map=render_body_map(
            kb,
            targets=[(t.muscle, t.side) for t in plan.targets],
            hazards=[h.id for t in plan.targets for h in t.hazards],
            interactive=False,
            title="Planned targets and hazard zones",
        ),
        doc_kinds=PATIENT_DOCS,
    )


def _plan_document(
    web: WebSession, plan_id: UUID, kind: str
) -> tuple[docs.Document, Bundle, Record]:
    plan_record, _, b, _, plan = plan_context(web, plan_id, "document.read")
    kb = kb_of(web)
    weight = (
        b.assessment(b.latest_assessment).input.patient.weight_kg if b.latest_assessment else None
    )
    patient = patient_line(web, b, weight)
    if kind == "consent":
        doc = docs.consent_form(plan, kb, patient, on=web.today)
    elif kind == "aftercare":
        doc = docs.aftercare_sheet(plan, kb, patient, on=web.today)
    elif kind == "exercises":
        doc = docs.exercise_program(
            [(t.muscle, t.side) for t in plan.targets], kb, patient, on=web.today
        )
    else:
        raise InvalidInput.single("document", f"unknown document {kind!r}")
    return doc, b, plan_record


@router.get(f"{PREFIX}/plans/{{plan_id}}/documents/{{kind}}")
def plan_document(
    web: Web,
    plan_id: UUID,
    kind: str,
    format: Annotated[str, Query(pattern="^(html|pdf)$")] = "html",
) -> Response:
    doc, _, _ = _plan_document(web, plan_id, kind)
    return doc_response(doc, format)


@router.post(f"{PREFIX}/plans/{{plan_id}}/documents/{{kind}}/keep")
def keep_plan_document(web: Web, form: Posted, plan_id: UUID, kind: str) -> Response:
    """Keep the PDF with the patient's record (a document record, digest and size)."""
    doc, b, plan_record = _plan_document(web, plan_id, kind)
    pdf = docs.render_pdf(doc)
    web.run(
        "document.create",
        lambda uow, note: clinical.create(
            Write(uow, note, web.actor, web.state.clock()),
            "document",
            b.patient.id,
            DocumentIn(
                kind=doc.kind,
                title=doc.title,
                media_type="application/pdf",
                content_base64=base64.b64encode(pdf).decode(),
                source_id=plan_record.id,
                knowledge_version=kb_of(web).version,
            ),
        ),
    )
    return redirect(f"{PREFIX}/plans/{plan_id}?kept={kind}")
