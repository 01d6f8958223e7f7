"""The clinician web app: server-rendered pages over the services layer.

Every page is one audited call (``Call.run``) with the signed-in user's role; the engine
functions (``assess``, ``plan_procedure``, ``check_dose``, ``evaluate_course``) decide and
the templates only show their results. Routes live under ``/app``; ``/`` sends there.
"""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from triggerpath.adapters import documents as docs
from triggerpath.adapters.bodymap import HAZARD_ZONES, render_body_map
from triggerpath.domain.course import CourseReport, check_episode, evaluate_course
from triggerpath.domain.planning import ProcedurePlan, plan_procedure
from triggerpath.domain.scoring import score
from triggerpath.domain.validation import problems_from
from triggerpath.entrypoints.api.deps import AppState, get_state, request_id
from triggerpath.entrypoints.web import forms
from triggerpath.entrypoints.web.chart import trend_svg
from triggerpath.entrypoints.web.episode import (
    PLAN_REQUEST_KIND,
    Bundle,
    course_episode,
    load_bundle,
    plan_request_of,
    trend,
)
from triggerpath.entrypoints.web.support import (
    PREFIX,
    BadCsrf,
    Web,
    WebRoute,
    WebSession,
    error_page,
    page,
    redirect,
    static_file,
)
from triggerpath.errors import FieldProblem, InvalidInput
from triggerpath.knowledge.instruments import Instrument
from triggerpath.knowledge.loader import Knowledge
from triggerpath.knowledge.schema import REGIONS
from triggerpath.services import auth, clinical, records
from triggerpath.services.audit import AuditNote
from triggerpath.services.model import AuditEvent, Record, Window
from triggerpath.services.payloads import (
    AssessmentIn,
    DocumentData,
    DocumentIn,
    EpisodeData,
    OutcomeData,
    PatientData,
    PlanData,
    PlannedSite,
    SessionIn,
)
from triggerpath.services.uow import UnitOfWork

router = APIRouter(route_class=WebRoute, include_in_schema=False)
StateDep = Annotated[AppState, Depends(get_state)]
PATIENT_DOCS = ("consent", "aftercare", "exercises")
COMPLICATIONS = (
    "vasovagal",
    "bleeding_or_haematoma",
    "post_injection_soreness",
    "pneumothorax",
    "infection",
    "nerve_injury",
    "allergic_reaction",
    "local_anaesthetic_toxicity",
    "other",
)
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


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


def _kb(web: WebSession) -> Knowledge:
    return web.state.kb


def _age(birth_year: int | None, on: date) -> int | None:
    return on.year - birth_year if birth_year else None


def _patient_line(b: Bundle, weight: Any = None) -> docs.PatientLine:
    pd = b.patient_data
    return docs.PatientLine(pd.mrn, pd.sex, _age(pd.birth_year, date.today()), weight)


# --------------------------------------------------------------------------- static, home
@router.get("/")
def root() -> Response:
    return redirect(f"{PREFIX}/")


@router.get(f"{PREFIX}/static/{{name}}")
def static(name: str) -> Response:
    data = static_file(name)
    if data is None:
        return Response(status_code=404)
    suffix = name[name.rfind(".") :]
    return Response(
        data,
        media_type=STATIC_TYPES.get(suffix, "application/octet-stream"),
        headers={"Cache-Control": "no-cache"},
    )


# --------------------------------------------------------------------------- login
def _safe_next(value: str | None) -> str:
    if value and value.startswith(f"{PREFIX}/") and not value.startswith("//"):
        return value
    return f"{PREFIX}/"


@router.get(f"{PREFIX}/login")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return page(request, "login.html", None, next=_safe_next(next), username="", error=None)


@router.post(f"{PREFIX}/login")
async def login(request: Request, state: StateDep) -> Response:
    form = await request.form()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    nxt = _safe_next(str(form.get("next", "")))
    now = state.clock()
    user = None
    try:
        with state.uow_factory() as uow:
            user = auth.check_password(uow, username, password)
            token, _expires = auth.open_session(
                uow, state.secret_key, user, now, state.settings.session_hours
            )
            uow.commit()
    except auth.Unauthenticated:
        token = ""
    with state.uow_factory() as uow:
        known = user or uow.users.by_username(username)
        uow.audit.add(
            AuditEvent(
                at=now,
                request_id=request_id(request),
                actor=known.username if known else None,
                role=known.role if known else None,
                action="auth.login",
                outcome="success" if user else "denied",
            )
        )
        uow.commit()
    if user is None:
        return page(
            request,
            "login.html",
            None,
            status_code=401,
            next=nxt,
            username=username,
            error="Wrong username or password.",
        )
    response = redirect(nxt if user.role != "admin" else f"{PREFIX}/admin")
    response.set_cookie(
        auth.SESSION_COOKIE,
        token,
        max_age=int(timedelta(hours=state.settings.session_hours).total_seconds()),
        secure=state.settings.cookie_secure,
        httponly=True,
        samesite="strict",
        path="/",
    )
    return response


@router.post(f"{PREFIX}/logout")
def logout(web: Web, form: Posted) -> Response:
    with web.state.uow_factory() as uow:
        auth.close_session(uow, web.state.secret_key, web.token, web.state.clock())
        uow.commit()
    response = redirect(f"{PREFIX}/login")
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response


@router.get(f"{PREFIX}/admin")
def admin_home(request: Request, web: Web) -> HTMLResponse:
    return page(
        request,
        "error.html",
        web,
        title="Administrators",
        detail="The administrator role manages users, API keys, policy and the audit trail "
        "(CLI: triggerpath users, triggerpath audit; API: /docs). It sees no patient data.",
    )


# --------------------------------------------------------------------------- patients
@router.get(f"{PREFIX}/")
def patients(request: Request, web: Web, q: str = "", offset: int = 0) -> HTMLResponse:
    query = q.strip()

    def run(uow: UnitOfWork, note: AuditNote) -> tuple[list[Record], int]:
        if query:
            exact, _ = records.list_(uow, note, "patient", Window(limit=1), mrn=query)
            if exact:
                return exact, 1
            every, _ = records.list_(uow, AuditNote(), "patient", Window(limit=2000))
            found = [r for r in every if query.lower() in str(r.current.data["mrn"]).lower()]
            return found[:100], len(found)
        return records.list_(uow, note, "patient", Window(limit=100, offset=max(0, offset)))

    found, total = web.run("patient.list", run)
    return page(
        request,
        "patients.html",
        web,
        patients=[(r, PatientData.model_validate(r.current.data)) for r in found],
        total=total,
        q=query,
        today=web.today,
    )


def _episode_values(values: dict[str, Any]) -> tuple[EpisodeData | None, forms.Parsed]:
    p = forms.Parsed()
    onset = forms.one(values, "onset")
    try:
        data = EpisodeData.model_validate(
            {
                "regions": [r for r in forms.many(values, "regions") if r in REGIONS],
                "onset": onset or None,
                "note": forms.one(values, "episode_note") or None,
            }
        )
    except ValidationError as err:
        for prob in problems_from(err):
            name = {"note": "episode_note"}.get(prob.field.split("[")[0], prob.field.split("[")[0])
            p.add(name, forms._friendly(prob.reason))
        return None, p
    return data, p


@router.get(f"{PREFIX}/patients/new")
def new_patient_page(request: Request, web: Web) -> HTMLResponse:
    return page(request, "patient_new.html", web, values={}, errors={}, regions=REGIONS)


@router.post(f"{PREFIX}/patients/new")
def new_patient(request: Request, web: Web, form: Posted) -> Response:
    web.call("patient.create").authorise()  # refuse before validating
    values = forms.values_of(form)
    p = forms.Parsed()
    patient: PatientData | None = None
    birth_year = forms.number(p, values, "birth_year", whole=True)
    try:
        patient = PatientData(
            mrn=forms.one(values, "mrn"),
            birth_year=birth_year,
            sex=forms.one(values, "sex") or "unknown",
        )
    except ValidationError as err:
        for prob in problems_from(err):
            if prob.field == "mrn" and not forms.one(values, "mrn"):
                p.add("mrn", "enter the patient's MRN")
            elif prob.field == "mrn":
                p.add("mrn", "letters, digits and . _ / - only")
            else:
                p.add(prob.field, forms._friendly(prob.reason))
    episode, ep = _episode_values(values)
    p.problems.extend(ep.problems)
    if patient is not None and not p.problems:
        with web.state.uow_factory() as uow:
            if uow.records.mrn_owner(patient.mrn) is not None:
                p.add("mrn", "another patient already has this MRN")
    if p.problems or patient is None or episode is None:
        return page(
            request,
            "patient_new.html",
            web,
            status_code=422,
            values=values,
            errors=p.errors(),
            regions=REGIONS,
        )
    created = web.run(
        "patient.create",
        lambda uow, note: clinical.create_patient(uow, note, web.actor, patient, web.state.clock()),
    )
    ep_record = web.run(
        "episode.create",
        lambda uow, note: records.create(
            uow,
            note,
            web.actor,
            "episode",
            episode.model_dump(mode="json"),
            now=web.state.clock(),
            parent_id=created.id,
        ),
    )
    return redirect(f"{PREFIX}/episodes/{ep_record.id}/assess?saved=patient-new")


@router.get(f"{PREFIX}/patients/{{patient_id}}")
def patient_page(request: Request, web: Web, patient_id: UUID) -> HTMLResponse:
    def run(uow: UnitOfWork, note: AuditNote) -> tuple[Record, list[Record], list[Record]]:
        patient = records.get(uow, note, "patient", patient_id)
        episodes, _ = records.list_(
            uow, AuditNote(), "episode", Window(limit=200), parent_id=patient.id
        )
        documents, _ = records.list_(
            uow, AuditNote(), "document", Window(limit=500), parent_id=patient.id
        )
        return patient, episodes, documents

    patient, episodes, documents = web.run("patient.read", run)
    kept = [
        (d, DocumentData.model_validate(d.current.data))
        for d in documents
        if d.current.data.get("kind") != PLAN_REQUEST_KIND
    ]
    return page(
        request,
        "patient.html",
        web,
        patient=patient,
        pd=PatientData.model_validate(patient.current.data),
        episodes=[(e, EpisodeData.model_validate(e.current.data)) for e in episodes],
        documents=kept,
        regions=REGIONS,
        values={},
        errors={},
        today=web.today,
    )


@router.post(f"{PREFIX}/patients/{{patient_id}}/episodes")
def new_episode(request: Request, web: Web, form: Posted, patient_id: UUID) -> Response:
    values = forms.values_of(form)
    episode, p = _episode_values(values)
    if episode is None:
        return error_page(request, 422, "Episode not opened", "; ".join(map(str, p.problems)))
    ep_record = web.run(
        "episode.create",
        lambda uow, note: records.create(
            uow,
            note,
            web.actor,
            "episode",
            episode.model_dump(mode="json"),
            now=web.state.clock(),
            parent_id=patient_id,
        ),
    )
    return redirect(f"{PREFIX}/episodes/{ep_record.id}")


# --------------------------------------------------------------------------- episode
def _bundle(web: WebSession, episode_id: UUID, action: str = "episode.read") -> Bundle:
    b: Bundle = web.run(action, lambda uow, note: load_bundle(uow, note, episode_id))
    return b


def _course(web: WebSession, b: Bundle) -> tuple[CourseReport | None, list[FieldProblem]]:
    episode = course_episode(b, _kb(web))
    if episode is None:
        return None, []
    kb = _kb(web)
    problems = check_episode(episode, kb, as_of=web.today)
    if problems:
        return None, problems
    with web.state.uow_factory() as uow:
        _, policy = clinical.current_policy(uow)
    return evaluate_course(episode, kb, as_of=web.today, policy=policy), []


@router.get(f"{PREFIX}/episodes/{{episode_id}}")
def episode_page(request: Request, web: Web, episode_id: UUID) -> HTMLResponse:
    b = _bundle(web, episode_id)
    report, problems = _course(web, b)
    return page(
        request,
        "episode.html",
        web,
        events=_timeline(b),
        b=b,
        pd=b.patient_data,
        ed=EpisodeData.model_validate(b.episode.current.data),
        assessments=[(a, b.assessment(a)) for a in b.assessments],
        sessions=[(s, b.session_data(s)) for s in b.sessions],
        outcomes=[(o, b.outcome_data(o)) for o in b.outcomes],
        chart=trend_svg(trend(b)),
        series=trend(b),
        report=report,
        course_problems=problems,
        kb=_kb(web),
    )


def _timeline(b: Bundle) -> list[dict[str, Any]]:
    """Everything recorded in the episode, oldest first, with where to open it."""
    events: list[dict[str, Any]] = []
    for a in b.assessments:
        data = b.assessment(a)
        events.append(
            {
                "when": data.as_of.isoformat(),
                "kind": "Assessment",
                "text": data.result.headline,
                "verdict": data.result.verdict,
                "url": f"{PREFIX}/assessments/{a.id}",
                "signed": a.signed,
            }
        )
        for plan in b.plans.get(a.id, []):
            pd = PlanData.model_validate(plan.current.data)
            muscles = list(dict.fromkeys(f"{s.muscle} ({s.side})" for s in pd.sites))
            events.append(
                {
                    "when": (pd.planned_for or plan.created_at.date()).isoformat(),
                    "kind": "Plan",
                    "text": "Targets: " + ", ".join(m.replace("_", " ") for m in muscles),
                    "url": f"{PREFIX}/plans/{plan.id}",
                    "signed": plan.signed,
                }
            )
    for s in b.sessions:
        sd = b.session_data(s)
        total = ", ".join(f"{k} {v:g} mg" for k, v in sd.total_mg_by_agent.items())
        events.append(
            {
                "when": sd.performed_at.date().isoformat(),
                "kind": "TPI session",
                "text": f"{len({x.muscle for x in sd.sites})} muscle(s); "
                f"{total or 'no anesthetic'}",
                "url": f"{PREFIX}/sessions/{s.id}",
                "signed": False,
            }
        )
    by_day: dict[str, list[str]] = {}
    for o in b.outcomes:
        od = b.outcome_data(o)
        if od.instrument in ("physical_therapy", "home_exercise"):
            text = od.instrument.replace("_", " ") + (": yes" if od.value else ": no")
        elif od.instrument == "relief_days":
            text = f"relief {od.value:g} days"
        else:
            text = f"{od.instrument.upper()} {od.value:g}"
        by_day.setdefault(od.measured_on.isoformat(), []).append(text)
    for day, values in by_day.items():
        events.append(
            {
                "when": day,
                "kind": "Outcomes",
                "text": "; ".join(values),
                "url": f"{PREFIX}/episodes/{b.episode.id}/course",
                "signed": False,
            }
        )
    order = {"Assessment": 0, "Plan": 1, "Outcomes": 2, "TPI session": 3}
    return sorted(events, key=lambda e: (e["when"], order[e["kind"]]))


# --------------------------------------------------------------------------- assessment
def _assessment_page(
    request: Request,
    web: WebSession,
    b: Bundle,
    values: forms.Values,
    errors: dict[str, list[str]],
    status_code: int = 200,
) -> HTMLResponse:
    kb = _kb(web)
    selected = [
        (
            forms.one(values, f"trigger_points[{i}].muscle"),
            forms.one(values, f"trigger_points[{i}].side") or "left",
        )
        for i in forms.tp_indices(values)
    ]
    return page(
        request,
        "assess.html",
        web,
        status_code=status_code,
        b=b,
        pd=b.patient_data,
        values=values,
        errors=errors,
        kb=kb,
        regions=REGIONS,
        causes=forms.CAUSES,
        impact_options=[(i, i) for i in forms.IMPACTS],
        muscle_options=[(m.id, m.name) for m in kb.anatomy.muscles],
        responses=forms.RESPONSES,
        tp_findings=forms.TP_FINDINGS,
        tp_labels=forms.TP_LABELS,
        tp_rows=forms.tp_rows(values),
        generator_groups=forms.generator_groups(),
        red_flags=forms.RED_FLAGS,
        contraindications=forms.CONTRAINDICATIONS,
        body_map=render_body_map(
            kb, selected=selected, title="Posterior body map: place trigger points"
        ),
        muscles_json=json.dumps(
            {
                m.id: {"name": m.name, "zones": m.referral_zones, "regions": list(m.regions)}
                for m in kb.anatomy.muscles
            }
        ),
        draft_key=f"assess-{b.episode.id}",
    )


@router.get(f"{PREFIX}/episodes/{{episode_id}}/assess")
def assess_page(request: Request, web: Web, episode_id: UUID) -> HTMLResponse:
    b = _bundle(web, episode_id)
    latest = b.latest_assessment
    if latest is not None:
        values = forms.assessment_values(b.assessment(latest).input, web.today)
    else:
        pd = b.patient_data
        ed = EpisodeData.model_validate(b.episode.current.data)
        values = {
            "patient.sex": pd.sex,
            "regions": list(ed.regions),
            "as_of": web.today.isoformat(),
        }
        age = _age(pd.birth_year, web.today)
        if age is not None:
            values["patient.age_years"] = str(age)
        if ed.onset:
            values["pain.duration_weeks"] = f"{(web.today - ed.onset).days / 7:.0f}"
    return _assessment_page(request, web, b, values, {})


@router.post(f"{PREFIX}/episodes/{{episode_id}}/assess")
def assess_submit(request: Request, web: Web, form: Posted, episode_id: UUID) -> Response:
    web.call("assessment.create").authorise()  # refuse before validating
    values = forms.values_of(form)
    kb = _kb(web)
    assessment, as_of, parsed = forms.parse_assessment_form(values, kb)
    if assessment is None:
        b = _bundle(web, episode_id)
        return _assessment_page(request, web, b, values, parsed.errors(), 422)
    body = AssessmentIn(input=assessment, as_of=as_of or web.today)
    record = web.run(
        "assessment.create",
        lambda uow, note: clinical.record_assessment(
            uow,
            note,
            web.actor,
            episode_id,
            body,
            kb,
            today=web.today,
            now=web.state.clock(),
        ),
    )
    return redirect(f"{PREFIX}/assessments/{record.id}?saved=assess-{episode_id}")


def _assessment_bundle(web: WebSession, assessment_id: UUID, action: str) -> tuple[Record, Bundle]:
    def run(uow: UnitOfWork, note: AuditNote) -> tuple[Record, Bundle]:
        a = records.get(uow, note, "assessment", assessment_id)
        assert a.parent_id is not None
        return a, load_bundle(uow, AuditNote(), a.parent_id)

    result: tuple[Record, Bundle] = web.run(action, run)
    return result


@router.get(f"{PREFIX}/assessments/{{assessment_id}}")
def assessment_view(request: Request, web: Web, assessment_id: UUID) -> HTMLResponse:
    record, b = _assessment_bundle(web, assessment_id, "assessment.read")
    data = b.assessment(record)
    kb = _kb(web)
    rec = data.result
    tps = [(tp.muscle, tp.side) for tp in data.input.trigger_points]
    return page(
        request,
        "recommendation.html",
        web,
        b=b,
        pd=b.patient_data,
        record=record,
        data=data,
        rec=rec,
        kb=kb,
        statements=kb.statements,
        body_map=render_body_map(
            kb, selected=tps, interactive=False, title="Trigger points examined"
        ),
        plans=b.plans.get(record.id, []),
    )


@router.post(f"{PREFIX}/assessments/{{assessment_id}}/sign")
def assessment_sign(web: Web, form: Posted, assessment_id: UUID) -> Response:
    version = int(forms.one(forms.values_of(form), "version") or "0")
    web.run(
        "assessment.sign",
        lambda uow, note: records.sign(
            uow,
            note,
            web.actor,
            "assessment",
            assessment_id,
            expected=version,
            now=web.state.clock(),
        ),
    )
    return redirect(f"{PREFIX}/assessments/{assessment_id}")


# --------------------------------------------------------------------------- planner
def _run_plan(web: WebSession, b: Bundle, record: Record, pf: forms.PlanForm) -> ProcedurePlan:
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
        knowledge=_kb(web),
        prior_24h=pf.prior_24h,
        acknowledged_cautions=pf.acknowledged,
        steroid=pf.steroid,
    )


def _default_plan_values(b: Bundle, record: Record, kb: Knowledge) -> forms.Values:
    data = b.assessment(record)
    values: forms.Values = {}
    confirmed = {r.code for r in data.result.findings}
    del confirmed
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
    kb = _kb(web)
    data = b.assessment(record)
    targets = [
        (
            forms.one(values, f"targets[{i}].muscle"),
            forms.one(values, f"targets[{i}].side") or "left",
        )
        for i in forms._rows(values, "targets", "muscle")
    ]
    hazards = sorted({h.id for t in plan.targets for h in t.hazards}) if plan else []
    return page(
        request,
        "planner.html",
        web,
        status_code=status_code,
        b=b,
        pd=b.patient_data,
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
        plan_json=json.dumps(_plan_json(plan)) if plan else "null",
        steroids=kb.injectates.corticosteroids.agents,
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
    record, b = _assessment_bundle(web, assessment_id, "assessment.read")
    values = _default_plan_values(b, record, _kb(web))
    plan: ProcedurePlan | None = None
    errors: dict[str, list[str]] = {}
    pf, _ = forms.parse_plan_form(values)
    if pf is not None:
        try:
            plan = _run_plan(web, b, record, pf)
        except InvalidInput as exc:
            errors = forms.Parsed(list(exc.problems)).errors()
    return _plan_page(request, web, record, b, values, errors, plan)


def _plan_json(plan: ProcedurePlan) -> dict[str, Any]:
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


@router.post(f"{PREFIX}/api/assessments/{{assessment_id}}/plan-check")
def plan_check(web: Web, form: Posted, assessment_id: UUID) -> JSONResponse:
    """The live dose check: the planner's result for the form as it stands (nothing stored)."""
    values = forms.values_of(form)
    record, b = _assessment_bundle(web, assessment_id, "compute.plan")
    pf, parsed = forms.parse_plan_form(values)
    if pf is None:
        return JSONResponse({"status": "invalid", "errors": parsed.errors()}, status_code=200)
    try:
        plan = _run_plan(web, b, record, pf)
    except InvalidInput as exc:
        return JSONResponse(
            {"status": "invalid", "errors": forms.Parsed(list(exc.problems)).errors()}
        )
    return JSONResponse(_plan_json(plan))


def _planned_sites(plan: ProcedurePlan) -> list[PlannedSite]:
    """One planned site per target and stock solution (and saline), volumes split by parts."""
    assert plan.injectate is not None
    inj = plan.injectate
    total_parts = sum((s.parts for s in inj.solutions), Decimal(0)) + inj.saline_parts
    out: list[PlannedSite] = []
    for card in plan.targets:
        guidance: Literal["landmark", "ultrasound"] = (
            "ultrasound" if card.guidance.startswith("ultrasound") else "landmark"
        )
        common = {
            "muscle": card.muscle,
            "side": card.side,
            "needle_gauge": card.needle.gauge_max,
            "needle_length_mm": float(card.needle.length_mm_max),
            "guidance": guidance,
        }
        for s in inj.solutions:
            ml = round(float(card.volume_ml * s.parts / total_parts), 3)
            out.append(
                PlannedSite(
                    agent=s.agent, concentration_percent=float(s.percent), volume_ml=ml, **common
                )
            )
        if inj.saline_parts:
            ml = round(float(card.volume_ml * inj.saline_parts / total_parts), 3)
            out.append(PlannedSite(agent="saline", volume_ml=ml, **common))
    return out


@router.post(f"{PREFIX}/assessments/{{assessment_id}}/plan")
def planner_submit(request: Request, web: Web, form: Posted, assessment_id: UUID) -> Response:
    web.call("plan.create").authorise()  # refuse before validating
    values = forms.values_of(form)
    record, b = _assessment_bundle(web, assessment_id, "assessment.read")
    pf, parsed = forms.parse_plan_form(values)
    if pf is None:
        return _plan_page(request, web, record, b, values, parsed.errors(), None, 422)
    try:
        plan = _run_plan(web, b, record, pf)
    except InvalidInput as exc:
        errors = forms.Parsed(list(exc.problems)).errors()
        return _plan_page(request, web, record, b, values, errors, None, 422)
    if plan.status != "ready":
        return _plan_page(
            request,
            web,
            record,
            b,
            values,
            {"plan": [f"Not saved: {plan.headline}"]},
            plan,
            422,
        )
    kb = _kb(web)
    plan_data = PlanData(sites=_planned_sites(plan), planned_for=web.today)
    request_json = {
        "targets": [t.model_dump(mode="json") for t in pf.targets],
        "injectate": pf.injectate.model_dump(mode="json") if pf.injectate else None,
        "prior_24h": [d.model_dump(mode="json") for d in pf.prior_24h],
        "acknowledged_cautions": pf.acknowledged,
        "steroid": pf.steroid.model_dump(mode="json") if pf.steroid else None,
        "as_of": web.today.isoformat(),
    }

    def run(uow: UnitOfWork, note: AuditNote) -> Record:
        plan_record = clinical.record_plan(
            uow, note, web.actor, assessment_id, plan_data, kb, web.state.clock()
        )
        content = json.dumps(request_json).encode()
        clinical.record_document(
            uow,
            AuditNote(),
            web.actor,
            plan_record.patient_id,
            DocumentIn(
                kind=PLAN_REQUEST_KIND,
                title="Procedure planner input",
                media_type="application/json",
                content_base64=base64.b64encode(content).decode(),
                source_id=plan_record.id,
                knowledge_version=kb.version,
            ),
            web.state.clock(),
        )
        return plan_record

    plan_record = web.run("plan.create", run)
    return redirect(f"{PREFIX}/plans/{plan_record.id}?saved=plan-{assessment_id}")


# --------------------------------------------------------------------------- plan view
def _plan_context(
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
        knowledge=_kb(web),
        prior_24h=pf.prior_24h,
        acknowledged_cautions=pf.acknowledged,
        steroid=pf.steroid,
    )
    return plan_record, a_record, b, req, plan


@router.get(f"{PREFIX}/plans/{{plan_id}}")
def plan_view(request: Request, web: Web, plan_id: UUID) -> HTMLResponse:
    plan_record, a_record, b, _, plan = _plan_context(web, plan_id)
    kb = _kb(web)
    return page(
        request,
        "plan.html",
        web,
        b=b,
        pd=b.patient_data,
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


@router.post(f"{PREFIX}/plans/{{plan_id}}/sign")
def plan_sign(web: Web, form: Posted, plan_id: UUID) -> Response:
    version = int(forms.one(forms.values_of(form), "version") or "0")
    web.run(
        "plan.sign",
        lambda uow, note: records.sign(
            uow, note, web.actor, "plan", plan_id, expected=version, now=web.state.clock()
        ),
    )
    return redirect(f"{PREFIX}/plans/{plan_id}")


def _doc_response(doc: docs.Document, fmt: str) -> Response:
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


def _plan_document(
    web: WebSession, plan_id: UUID, kind: str
) -> tuple[docs.Document, Bundle, Record]:
    plan_record, _, b, _, plan = _plan_context(web, plan_id, "document.read")
    kb = _kb(web)
    weight = (
        b.assessment(b.latest_assessment).input.patient.weight_kg if b.latest_assessment else None
    )
    patient = _patient_line(b, weight)
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
    return _doc_response(doc, format)


@router.post(f"{PREFIX}/plans/{{plan_id}}/documents/{{kind}}/keep")
def keep_plan_document(web: Web, form: Posted, plan_id: UUID, kind: str) -> Response:
    """Keep the PDF with the patient's record (a document record, digest and size)."""
    doc, b, plan_record = _plan_document(web, plan_id, kind)
    pdf = docs.render_pdf(doc)
    web.run(
        "document.create",
        lambda uow, note: clinical.record_document(
            uow,
            note,
            web.actor,
            b.patient.id,
            DocumentIn(
                kind=doc.kind,
                title=doc.title,
                media_type="application/pdf",
                content_base64=base64.b64encode(pdf).decode(),
                source_id=plan_record.id,
                knowledge_version=_kb(web).version,
            ),
            web.state.clock(),
        ),
    )
    return redirect(f"{PREFIX}/plans/{plan_id}?kept={kind}")


# --------------------------------------------------------------------------- sessions
def _session_values(b: Bundle, plan_id: UUID | None, now: datetime) -> forms.Values:
    values: forms.Values = {
        "performed_at": now.strftime("%Y-%m-%dT%H:%M"),
        "aspiration": "negative",
        "twitch": "unknown",
    }
    plans = b.all_plans
    plan = next((p for p in plans if p.id == plan_id), plans[-1] if plans else None)
    if plan is None:
        return values
    values["plan_id"] = str(plan.id)
    data = PlanData.model_validate(plan.current.data)
    for i, s in enumerate(data.sites):
        values[f"sites[{i}].muscle"] = s.muscle
        values[f"sites[{i}].side"] = s.side
        values[f"sites[{i}].agent"] = s.agent
        values[f"sites[{i}].concentration_percent"] = (
            f"{s.concentration_percent:g}" if s.concentration_percent else ""
        )
        values[f"sites[{i}].volume_ml"] = f"{s.volume_ml:g}"
        if s.guidance:
            values["guidance"] = "ultrasound" if s.guidance == "ultrasound" else "palpation"
        if s.needle_gauge and s.needle_length_mm:
            values["needle"] = f"{s.needle_gauge} G, {s.needle_length_mm:g} mm"
    return values


def _session_page(
    request: Request,
    web: WebSession,
    b: Bundle,
    values: forms.Values,
    errors: dict[str, list[str]],
    status_code: int = 200,
) -> HTMLResponse:
    return page(
        request,
        "session.html",
        web,
        status_code=status_code,
        b=b,
        pd=b.patient_data,
        values=values,
        errors=errors,
        kb=_kb(web),
        site_rows=[
            i
            for i in forms._rows(values, "sites", "muscle")
            if forms.one(values, f"sites[{i}].muscle")
        ],
        muscle_options=[(m.id, m.name) for m in _kb(web).anatomy.muscles],
        agent_options=[(la.id, la.name) for la in _kb(web).injectates.local_anesthetics]
        + [("saline", "Saline 0.9%")],
        complications=COMPLICATIONS,
        aspiration=forms.ASPIRATION,
        twitch=forms.TWITCH,
        guidance=forms.GUIDANCE,
        draft_key=f"session-{b.episode.id}",
    )


@router.get(f"{PREFIX}/episodes/{{episode_id}}/sessions/new")
def session_page(
    request: Request, web: Web, episode_id: UUID, plan: UUID | None = None
) -> HTMLResponse:
    b = _bundle(web, episode_id)
    return _session_page(request, web, b, _session_values(b, plan, web.state.clock()), {})


@router.post(f"{PREFIX}/episodes/{{episode_id}}/sessions/new")
def session_submit(request: Request, web: Web, form: Posted, episode_id: UUID) -> Response:
    web.call("session.create").authorise()  # refuse before validating
    values = forms.values_of(form)
    p = forms.Parsed()
    performed = forms.parse_datetime_local(
        forms.one(values, "performed_at"), forms.one(values, "tz_offset")
    )
    if performed is None:
        p.add("performed_at", "enter the date and time of the procedure")
    elif performed > web.state.clock() + timedelta(minutes=5):
        p.add("performed_at", "is in the future: record a session once it is done")
    pre_nrs = forms.number(p, values, "pre_nrs", whole=True)
    if pre_nrs is None and not any(x.field == "pre_nrs" for x in p.problems):
        p.add("pre_nrs", "record the pain score before the injection (0-10)")
    elif pre_nrs is not None and not 0 <= pre_nrs <= 10:
        p.add("pre_nrs", "a pain score is 0-10")
    if forms.one(values, "consent") != "on":
        p.add("consent", "confirm that informed consent was obtained (S002.17)")
    sites: list[dict[str, Any]] = []
    for i in forms._rows(values, "sites", "muscle"):
        pre = f"sites[{i}]"
        if not forms.one(values, f"{pre}.muscle"):
            continue
        conc = forms.number(p, values, f"{pre}.concentration_percent")
        vol = forms.number(p, values, f"{pre}.volume_ml")
        sites.append(
            {
                "muscle": forms.one(values, f"{pre}.muscle"),
                "side": forms.one(values, f"{pre}.side"),
                "agent": forms.one(values, f"{pre}.agent"),
                "concentration_percent": float(conc) if conc is not None else None,
                "volume_ml": float(vol) if vol is not None else None,
            }
        )
    technique = forms.technique_line(
        {
            "guidance": forms.GUIDANCE.get(forms.one(values, "guidance"), ""),
            "needle": forms.one(values, "needle"),
            "aspiration": forms.ASPIRATION.get(forms.one(values, "aspiration"), ""),
            "twitch": forms.TWITCH.get(forms.one(values, "twitch"), ""),
            "consent": "obtained" if forms.one(values, "consent") == "on" else "",
        }
    )
    free = forms.one(values, "note")
    note = "\n".join(x for x in (technique, free) if x)
    complications = [c for c in forms.many(values, "complications") if c in COMPLICATIONS]
    plan_id = forms.one(values, "plan_id") or None
    body: SessionIn | None = None
    if not p.problems:
        try:
            body = SessionIn.model_validate(
                {
                    "performed_at": performed,
                    "plan_id": plan_id,
                    "sites": sites,
                    "complications": complications or ["none"],
                    "note": note or None,
                }
            )
        except ValidationError as err:
            for prob in problems_from(err):
                name = "note" if prob.field.startswith("note") else prob.field
                if name == "sites":
                    name = "sites"
                p.add(name, forms._friendly(prob.reason))
    if body is None or p.problems:
        b = _bundle(web, episode_id)
        return _session_page(request, web, b, values, p.errors(), 422)
    kb = _kb(web)
    session = web.run(
        "session.create",
        lambda uow, note_: clinical.record_session(
            uow, note_, web.actor, episode_id, body, kb, web.state.clock()
        ),
    )
    assert performed is not None and pre_nrs is not None
    web.run(
        "outcome.create",
        lambda uow, note_: clinical.record_outcome(
            uow,
            note_,
            web.actor,
            episode_id,
            OutcomeData(
                measured_on=performed.date(),
                instrument="nrs",
                value=pre_nrs,
                session_id=session.id,
                note="before the injection",
            ),
            web.state.clock(),
        ),
    )
    return redirect(f"{PREFIX}/sessions/{session.id}?saved=session-{episode_id}")


def _session_context(web: WebSession, session_id: UUID, action: str) -> tuple[Record, Bundle]:
    def run(uow: UnitOfWork, note: AuditNote) -> tuple[Record, Bundle]:
        s = records.get(uow, note, "session", session_id)
        assert s.parent_id is not None
        return s, load_bundle(uow, AuditNote(), s.parent_id)

    result: tuple[Record, Bundle] = web.run(action, run)
    return result


def _procedure_note(
    web: WebSession, session_id: UUID, action: str
) -> tuple[docs.Document, Record, Bundle]:
    record, b = _session_context(web, session_id, action)
    s = b.session_data(record)
    details, rest = forms.parse_technique(s.note)
    kb = _kb(web)
    plan: ProcedurePlan | None = None
    indication = None
    if s.plan_id is not None:
        try:
            _, a_record, _, _, plan = _plan_context(web, s.plan_id, "plan.read")
            indication = b.assessment(a_record).result
        except InvalidInput:
            plan = None
    if indication is None and b.latest_assessment is not None:
        indication = b.assessment(b.latest_assessment).result
    weight = (
        b.assessment(b.latest_assessment).input.patient.weight_kg if b.latest_assessment else None
    )
    proc = docs.ProcedureRecord(
        performed_at=s.performed_at,
        operator=s.operator,
        sites=[
            docs.ProcedureSite(
                x.muscle, x.side, x.agent, x.concentration_percent, x.volume_ml, x.mg
            )
            for x in s.sites
        ],
        complications=list(s.complications),
        consent=details.get("consent") == "obtained",
        aspiration=details.get("aspiration"),
        twitch=details.get("twitch"),
        guidance=details.get("guidance"),
        needle=details.get("needle"),
        note=rest or None,
    )
    doc = docs.procedure_note(proc, kb, _patient_line(b, weight), plan=plan, indication=indication)
    return doc, record, b


@router.get(f"{PREFIX}/sessions/{{session_id}}")
def session_view(request: Request, web: Web, session_id: UUID) -> HTMLResponse:
    doc, record, b = _procedure_note(web, session_id, "session.read")
    return page(
        request,
        "session_view.html",
        web,
        b=b,
        pd=b.patient_data,
        record=record,
        s=b.session_data(record),
        doc=doc,
    )


@router.get(f"{PREFIX}/sessions/{{session_id}}/note")
def session_note(
    web: Web, session_id: UUID, format: Annotated[str, Query(pattern="^(html|pdf)$")] = "html"
) -> Response:
    doc, _, _ = _procedure_note(web, session_id, "document.read")
    return _doc_response(doc, format)


# --------------------------------------------------------------------------- follow-up
def _outcome_page(
    request: Request,
    web: WebSession,
    b: Bundle,
    values: forms.Values,
    errors: dict[str, list[str]],
    status_code: int = 200,
) -> HTMLResponse:
    kb = _kb(web)
    ed = EpisodeData.model_validate(b.episode.current.data)
    regions = set(ed.regions)
    instruments: dict[str, Instrument] = {i.id: i for i in kb.instruments.instruments}
    show = [
        i
        for i in ("peg", "odi", "ndi")
        if not instruments[i].regions or regions & set(instruments[i].regions)
    ]
    return page(
        request,
        "outcome.html",
        web,
        status_code=status_code,
        b=b,
        pd=b.patient_data,
        values=values,
        errors=errors,
        session_options=[
            (str(s.id), b.session_data(s).performed_at.date().isoformat()) for s in b.sessions
        ],
        instruments=[instruments[i] for i in show],
        draft_key=f"outcome-{b.episode.id}",
    )


@router.get(f"{PREFIX}/episodes/{{episode_id}}/outcomes/new")
def outcome_page(
    request: Request, web: Web, episode_id: UUID, session: UUID | None = None
) -> HTMLResponse:
    b = _bundle(web, episode_id)
    values: forms.Values = {"measured_on": web.today.isoformat()}
    chosen = session or (b.sessions[-1].id if b.sessions else None)
    if chosen:
        values["session_id"] = str(chosen)
    return _outcome_page(request, web, b, values, {})


@router.post(f"{PREFIX}/episodes/{{episode_id}}/outcomes/new")
def outcome_submit(request: Request, web: Web, form: Posted, episode_id: UUID) -> Response:
    web.call("outcome.create").authorise()  # refuse before validating
    values = forms.values_of(form)
    kb = _kb(web)
    p = forms.Parsed()
    measured: date | None = None
    try:
        measured = date.fromisoformat(forms.one(values, "measured_on"))
        if measured > web.today:
            p.add("measured_on", "is in the future")
    except ValueError:
        p.add("measured_on", "enter a date (YYYY-MM-DD)")
    session_raw = forms.one(values, "session_id")
    session_id = UUID(session_raw) if session_raw else None
    items: list[OutcomeData] = []
    nrs = forms.number(p, values, "nrs", whole=True)
    if nrs is not None and not 0 <= nrs <= 10:
        p.add("nrs", "a pain score is 0-10")
    relief = forms.number(p, values, "relief_days")
    if relief is not None and not 0 <= relief <= 365:
        p.add("relief_days", "0-365 days")
    answers: dict[str, list[int | None]] = {}
    for inst, count in (("peg", 3), ("odi", 10), ("ndi", 10)):
        got = forms.parse_answers(p, values, inst, count)
        if got is not None:
            try:
                score(inst, got, kb, field=inst)
                answers[inst] = got
            except InvalidInput as exc:
                p.problems.extend(exc.problems)
    if nrs is None and relief is None and not answers:
        p.add("nrs", "record at least the pain score")
    if p.problems or measured is None:
        b = _bundle(web, episode_id)
        return _outcome_page(request, web, b, values, p.errors(), 422)
    common: dict[str, Any] = {"measured_on": measured, "session_id": session_id}
    if nrs is not None:
        items.append(OutcomeData(instrument="nrs", value=nrs, note="follow-up", **common))
    for inst, got in answers.items():
        result = score(inst, got, kb, field=inst)
        items.append(
            OutcomeData(
                instrument=inst,
                value=result.score,
                items={f"item{i + 1}": v for i, v in enumerate(got) if v is not None},
                **common,
            )
        )
    if relief is not None:
        items.append(OutcomeData(instrument="relief_days", value=float(relief), **common))
    for flag in ("physical_therapy", "home_exercise"):
        v = forms.one(values, flag)
        if v in ("yes", "no"):
            items.append(OutcomeData(instrument=flag, value=1 if v == "yes" else 0, **common))

    def run(uow: UnitOfWork, note: AuditNote) -> None:
        for item in items:
            clinical.record_outcome(uow, note, web.actor, episode_id, item, web.state.clock())

    web.run("outcome.create", run)
    return redirect(f"{PREFIX}/episodes/{episode_id}/course?saved=outcome-{episode_id}")


# --------------------------------------------------------------------------- course
@router.get(f"{PREFIX}/episodes/{{episode_id}}/course")
def course_page(request: Request, web: Web, episode_id: UUID) -> HTMLResponse:
    b = _bundle(web, episode_id)
    report, problems = _course(web, b)
    t = trend(b)
    return page(
        request,
        "course.html",
        web,
        b=b,
        pd=b.patient_data,
        report=report,
        course_problems=problems,
        chart=trend_svg(t),
        series=t,
        kb=_kb(web),
    )


@router.get(f"{PREFIX}/episodes/{{episode_id}}/reevaluation")
def reevaluation_document(
    web: Web, episode_id: UUID, format: Annotated[str, Query(pattern="^(html|pdf)$")] = "html"
) -> Response:
    b = _bundle(web, episode_id, "document.read")
    report, problems = _course(web, b)
    if report is None:
        raise InvalidInput(problems or [FieldProblem("assessment", "record an assessment first")])
    weight = (
        b.assessment(b.latest_assessment).input.patient.weight_kg if b.latest_assessment else None
    )
    doc = docs.reevaluation_summary(report, _kb(web), _patient_line(b, weight), on=web.today)
    return _doc_response(doc, format)


_ = UTC
