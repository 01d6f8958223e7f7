"""Patients (list, search by name, date of birth or MRN, new), episodes and the timeline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from triggerpath.domain import integrity
from triggerpath.domain.identity import identity_problems
from triggerpath.domain.validation import problems_from
from triggerpath.entrypoints.web import forms
from triggerpath.entrypoints.web.chart import trend_svg
from triggerpath.entrypoints.web.common import (
    Posted,
    bundle_of,
    bundle_page,
    course_of,
    kb_of,
)
from triggerpath.entrypoints.web.support import (
    PREFIX,
    Web,
    WebRoute,
    WebSession,
    error_page,
    page,
    redirect,
)
from triggerpath.errors import InvalidInput
from triggerpath.knowledge.schema import REGIONS
from triggerpath.services import clinical, records
from triggerpath.services.audit import AuditNote
from triggerpath.services.banner import banner_of
from triggerpath.services.episodes import (
    PLAN_REQUEST_KIND,
    Bundle,
    placements,
    trend,
)
from triggerpath.services.model import PatientSearch, Record, RecordQuery, Window
from triggerpath.services.payloads import (
    DocumentData,
    EpisodeData,
    OutcomeData,
    PatientData,
    PlanData,
)
from triggerpath.services.records import Write
from triggerpath.services.uow import UnitOfWork

router = APIRouter(route_class=WebRoute, include_in_schema=False)


@router.get(f"{PREFIX}/patients")
def patients(request: Request, web: Web, q: str = "", offset: int = 0) -> HTMLResponse:
    """Patients, or those found by the search box: an exact MRN first, else a date of birth
    (YYYY-MM-DD), else the words of a name or part of an MRN."""
    query = q.strip()[:200]
    window = Window(limit=100, offset=max(0, offset))

    def run(uow: UnitOfWork, note: AuditNote) -> tuple[list[Record], int]:
        if query:
            exact, _ = records.list_(uow, note, "patient", Window(limit=1), mrn=query)
            if exact:
                return exact, 1
            return records.list_(uow, note, "patient", window, search=_search_of(query))
        return records.list_(uow, note, "patient", window)

    found, total = web.run("patient.list", run)
    kb = kb_of(web)
    return page(
        request,
        "patients.html",
        web,
        patients=[
            (r, banner_of(PatientData.model_validate(r.current.data), [], kb, as_of=web.today))
            for r in found
        ],
        total=total,
        q=query,
        today=web.today,
    )


def _search_of(query: str) -> PatientSearch:
    try:
        return PatientSearch(birth_date=date.fromisoformat(query))
    except ValueError:
        return PatientSearch(text=query)


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


#: The new-patient form's fields (identity: two identifiers and the MRN, issue 17).
IDENTITY_FIELDS = ("family_name", "given_name", "birth_date", "sex", "mrn")


def _patient_values(web: WebSession, values: dict[str, Any], p: forms.Parsed) -> PatientData | None:
    """The posted identity, or the problems beside each field, all at once (nothing is
    defaulted: a blank sex is asked for, never taken as female or unknown). The names and date
    of birth are checked by the one identity rule (the kernel applies it again on the write)."""
    posted = {k: forms.one(values, k) or None for k in IDENTITY_FIELDS}
    try:
        return PatientData.model_validate(posted)
    except ValidationError as err:
        for prob in problems_from(err):
            name = prob.field.split(".")[0]
            if not forms.one(values, name):
                p.add(name, "required: " + forms.plain_field(name).lower())
            elif name == "mrn":
                p.add("mrn", "letters, digits and . _ / - only")
            elif name == "birth_date":
                p.add(name, "enter the date of birth as YYYY-MM-DD")
            else:
                p.add(name, forms._friendly(prob.reason))
    with web.state.uow_factory() as uow:
        _, policy = clinical.current_policy(uow)
    try:
        born = date.fromisoformat(posted["birth_date"] or "")
    except ValueError:
        born = None
    reported = {prob.field for prob in p.problems}
    for prob in identity_problems(
        family_name=posted["family_name"],
        given_name=posted["given_name"],
        birth_date=born,
        now=web.state.clock(),
        policy=policy.patient_identifiers,
    ):
        if prob.field not in reported:
            p.add(prob.field, prob.reason)
    return None


def _new_patient_page(
    request: Request, web: WebSession, values: dict[str, Any], p: forms.Parsed
) -> HTMLResponse:
    return page(
        request,
        "patient_new.html",
        web,
        status_code=422,
        values=values,
        errors=forms.refusal_errors(p.problems, {"note": "episode_note"}),
        regions=REGIONS,
    )


@router.post(f"{PREFIX}/patients/new")
def new_patient(request: Request, web: Web, form: Posted) -> Response:
    web.call("patient.create").authorise()  # refuse before validating
    values = forms.values_of(form)
    p = forms.Parsed()
    patient = _patient_values(web, values, p)
    episode, ep = _episode_values(values)
    p.problems.extend(ep.problems)
    if episode is not None and episode.onset is not None:  # shown with the other problems
        future = integrity.future_date_problem("onset", episode.onset, web.state.clock())
        p.problems.extend([future] if future else [])
    if patient is not None and not p.problems:
        with web.state.uow_factory() as uow:
            if uow.records.mrn_owner(patient.mrn) is not None:
                p.add("mrn", "another patient already has this MRN")
    if not p.problems and patient is not None and episode is not None:
        try:  # patient and episode in one unit of work: a refused episode stores neither
            ep_record = web.run("patient.create", _create(web, patient, episode))
        except InvalidInput as exc:
            p.problems.extend(exc.problems)
    if p.problems or patient is None or episode is None:
        return _new_patient_page(request, web, values, p)
    return redirect(f"{PREFIX}/episodes/{ep_record.id}/assess?saved=patient-new")


def _create(
    web: WebSession, patient: PatientData, episode: EpisodeData
) -> Callable[[UnitOfWork, AuditNote], Record]:
    def run(uow: UnitOfWork, note: AuditNote) -> Record:
        now = web.state.clock()
        created = clinical.create(Write(uow, note, web.actor, now), "patient", None, patient)
        web.call("episode.create").authorise()
        return clinical.create(
            Write(uow, AuditNote(), web.actor, now), "episode", created.id, episode
        )

    return run


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
    with web.state.uow_factory() as uow:  # the banner's flags: every episode's assessments
        assessed = [
            a
            for e in episodes
            for a in uow.records.page(RecordQuery("assessment", e.id), Window(limit=200))[0]
        ]
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
        banner_assessments=assessed,
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
        lambda uow, note: clinical.create(
            Write(uow, note, web.actor, web.state.clock()), "episode", patient_id, episode
        ),
    )
    return redirect(f"{PREFIX}/episodes/{ep_record.id}")


@router.get(f"{PREFIX}/episodes/{{episode_id}}")
def episode_page(request: Request, web: Web, episode_id: UUID) -> HTMLResponse:
    b = bundle_of(web, episode_id)
    report, problems = course_of(web, b)
    return bundle_page(
        request,
        "episode.html",
        web,
        b,
        events=_timeline(b),
        ed=EpisodeData.model_validate(b.episode.current.data),
        assessments=[(a, b.assessment(a)) for a in b.assessments],
        sessions=[(s, b.session_data(s)) for s in b.sessions],
        outcomes=[(o, b.outcome_data(o)) for o in b.outcomes],
        chart=trend_svg(trend(b)),
        series=trend(b),
        report=report,
        course_problems=problems,
        kb=kb_of(web),
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
    events.extend(_session_events(b))
    events.extend(_outcome_events(b))
    order = {"Assessment": 0, "Plan": 1, "Outcomes": 2, "TPI session": 3, "Follow-up": 4}
    return sorted(events, key=lambda e: (e["when"], e.get("at", ""), order[e["kind"]]))


def _session_events(b: Bundle) -> list[dict[str, Any]]:
    """One event per session; a session stored over a dose limit is a safety event."""
    out: list[dict[str, Any]] = []
    for s in b.sessions:
        sd = b.session_data(s)
        total = ", ".join(f"{k} {v:g} mg" for k, v in sd.total_mg_by_agent.items())
        text = f"{len({x.muscle for x in sd.sites})} muscle(s); {total or 'no anesthetic'}"
        exceeded = bool(getattr(sd, "dose_exceeded", False))
        if exceeded:
            text += (
                " – SAFETY EVENT: dose limit exceeded ("
                + str(getattr(sd, "exceedance_reason", "") or "reason not recorded")
                + "). Watch for local anesthetic systemic toxicity: numb lips or tongue, "
                "metallic taste, tinnitus, dizziness, agitation, seizures, arrhythmia; keep "
                "the patient observed with resuscitation at hand (S000.29)."
            )
        out.append(
            {
                "when": sd.performed_at.date().isoformat(),
                "at": sd.performed_at.isoformat(),
                "kind": "TPI session",
                "text": text,
                "url": f"{PREFIX}/sessions/{s.id}",
                "signed": False,
                "safety_event": exceeded,
            }
        )
    return out


def _outcome_text(od: OutcomeData) -> str:
    if od.instrument in ("physical_therapy", "home_exercise"):
        return od.instrument.replace("_", " ") + (": yes" if od.value else ": no")
    if od.instrument == "relief_days":
        return f"relief {od.value:g} days"
    return f"{od.instrument.upper()} {od.value:g}"


def _outcome_events(b: Bundle) -> list[dict[str, Any]]:
    """Outcomes grouped by day and by the session they belong to (domain/timeline.py): a
    baseline is shown before its session, a follow-up after it, even on the same day."""
    placed = placements(b)
    at = {s.id: b.session_data(s).performed_at for s in b.sessions}
    groups: dict[tuple[str, str, str], list[str]] = {}
    for o in b.outcomes:
        od = b.outcome_data(o)
        where = placed.get(o.id)
        relation: str = where.relation if where else ""
        s_at = at.get(where.session) if where and isinstance(where.session, UUID) else None
        key = (od.measured_on.isoformat(), s_at.isoformat() if s_at else "", relation)
        groups.setdefault(key, []).append(_outcome_text(od))
    out: list[dict[str, Any]] = []
    for (day, session_at, relation), values in groups.items():
        label = {"before": "Outcomes", "after": "Follow-up"}.get(relation, "Outcomes")
        suffix = (
            f" ({'before' if relation == 'before' else 'after'} the session of "
            f"{session_at[:16].replace('T', ' ')})"
            if session_at
            else ""
        )
        out.append(
            {
                "when": day,
                "at": session_at if day == session_at[:10] else "",
                "kind": label,
                "text": "; ".join(values) + suffix,
                "url": f"{PREFIX}/episodes/{b.episode.id}/course",
                "signed": False,
            }
        )
    return out
