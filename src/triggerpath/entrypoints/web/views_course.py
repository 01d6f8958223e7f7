"""Sessions, the procedure note, follow-ups, the course with its trend and the re-evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Annotated, Any, get_args
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from triggerpath.adapters import documents as docs
from triggerpath.adapters.documents import procedure_record
from triggerpath.domain.planning import ProcedurePlan
from triggerpath.domain.scoring import score
from triggerpath.domain.timeline import RELATIONS
from triggerpath.domain.validation import problems_from
from triggerpath.entrypoints.web import forms
from triggerpath.entrypoints.web.common import (
    Posted,
    bundle_of,
    bundle_page,
    course_of,
    doc_response,
    kb_of,
    patient_line,
    plan_context,
    record_bundle,
)
from triggerpath.entrypoints.web.support import (
    PREFIX,
    Web,
    WebRoute,
    WebSession,
    page,
    redirect,
)
from triggerpath.entrypoints.web.views_worksheet import course_page_context
from triggerpath.errors import FieldProblem, InvalidInput
from triggerpath.knowledge.instruments import Instrument
from triggerpath.knowledge.loader import Knowledge
from triggerpath.services import clinical
from triggerpath.services.audit import AuditNote
from triggerpath.services.episodes import (
    Bundle,
)
from triggerpath.services.model import Record
from triggerpath.services.payloads import (
    Complication,
    EpisodeData,
    OutcomeData,
    PlanData,
    SessionIn,
)
from triggerpath.services.uow import UnitOfWork

router = APIRouter(route_class=WebRoute, include_in_schema=False)
#: The complication choices, in the order the payload type lists them (one home).
COMPLICATIONS: tuple[str, ...] = get_args(Complication)


def _plan_of(b: Bundle, plan_id: UUID | None) -> Record | None:
    plans = b.all_plans
    return next((p for p in plans if p.id == plan_id), plans[-1] if plans else None)


def _one_value(items: Sequence[Any]) -> Any:
    """The value every planned site shares, else None (the operator then enters it)."""
    distinct = set(items)
    return distinct.pop() if len(distinct) == 1 else None


def _session_values(b: Bundle, plan_id: UUID | None, now: datetime) -> forms.Values:
    """The session form, prefilled from the plan it carries out (targets, solution and
    volumes, guidance and needle from the technique cards), never from fixed defaults:
    aspiration, twitch, consent, time-out and complications start unrecorded."""
    values: forms.Values = {"performed_at": now.strftime("%Y-%m-%dT%H:%M")}
    plan = _plan_of(b, plan_id)
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
    guidance = {s.guidance for s in data.sites if s.guidance}
    if guidance:
        values["guidance"] = "ultrasound" if "ultrasound" in guidance else "palpation"
    gauge = _one_value([s.needle_gauge for s in data.sites])
    length = _one_value([s.needle_length_mm for s in data.sites])
    if gauge is not None:
        values["needle_gauge"] = str(gauge)
    if length is not None:
        values["needle_length_mm"] = f"{length:g}"
    return values


def technique_cards(kb: Knowledge, values: forms.Values) -> list[str]:
    """One line per planned muscle: its technique card's needle and guidance (a hint)."""
    out: list[str] = []
    for i in forms._rows(values, "sites", "muscle"):
        m = kb.muscles.get(forms.one(values, f"sites[{i}].muscle"))
        if m is None:
            continue
        n = m.needle
        gauge = f"{n.gauge_min}" if n.gauge_min == n.gauge_max else f"{n.gauge_min}-{n.gauge_max}"
        line = (
            f"{m.name}: {gauge} G, {n.length_mm_min:g}-{n.length_mm_max:g} mm, "
            f"{str(m.guidance).replace('_', ' ')}"
        )
        if line not in out:
            out.append(line)
    return out


def _session_page(
    request: Request,
    web: WebSession,
    b: Bundle,
    values: forms.Values,
    errors: dict[str, list[str]],
    status_code: int = 200,
) -> HTMLResponse:
    return bundle_page(
        request,
        "session.html",
        web,
        b,
        status_code=status_code,
        values=values,
        errors=errors,
        kb=kb_of(web),
        site_rows=[
            i
            for i in forms._rows(values, "sites", "muscle")
            if forms.one(values, f"sites[{i}].muscle")
        ],
        muscle_options=[(m.id, m.name) for m in kb_of(web).anatomy.muscles],
        agent_options=[(la.id, la.name) for la in kb_of(web).injectates.local_anesthetics]
        + [("saline", "Saline 0.9%")],
        complications=COMPLICATIONS,
        aspiration=forms.ASPIRATION,
        twitch=forms.TWITCH,
        guidance=forms.GUIDANCE,
        yes_no=forms.YES_NO,
        handouts=forms.HANDOUTS,
        cards=technique_cards(kb_of(web), values),
        draft_key=f"session-{b.episode.id}",
    )


@router.get(f"{PREFIX}/episodes/{{episode_id}}/sessions/new")
def session_page(
    request: Request, web: Web, episode_id: UUID, plan: UUID | None = None
) -> HTMLResponse:
    b = bundle_of(web, episode_id)
    return _session_page(request, web, b, _session_values(b, plan, web.state.clock()), {})


def _technique_details(p: forms.Parsed, values: forms.Values) -> dict[str, str]:
    """The structured technique fields of the session form (blank ones stay unrecorded)."""
    gauge = forms.number(p, values, "needle_gauge", whole=True)
    if gauge is not None and not 18 <= gauge <= 34:
        p.add("needle_gauge", "a needle gauge is 18-34 G")
    length = forms.number(p, values, "needle_length_mm")
    if length is not None and not 0 < length <= 150:
        p.add("needle_length_mm", "a needle length is more than 0 and at most 150 mm")
    minutes = forms.number(p, values, "observation_minutes")
    if minutes is not None and not 0 <= minutes <= 1440:
        p.add("observation_minutes", "0-1440 minutes")
    consent = forms.one(values, "consent")
    return {
        "guidance": forms.GUIDANCE.get(forms.one(values, "guidance"), ""),
        "needle gauge": str(gauge) if gauge is not None else "",
        "needle length mm": f"{length:g}" if length is not None else "",
        "aspiration": forms.ASPIRATION.get(forms.one(values, "aspiration"), ""),
        "twitch": forms.TWITCH.get(forms.one(values, "twitch"), ""),
        "consent": "obtained" if consent == "on" else "",
        "time-out": forms.YES_NO.get(forms.one(values, "time_out"), ""),
        "vitals": forms.one(values, "vitals"),
        "lot numbers": forms.one(values, "lot_numbers"),
        "observation minutes": f"{minutes:g}" if minutes is not None else "",
        "handouts": ", ".join(
            forms.HANDOUTS[h] for h in forms.many(values, "handouts") if h in forms.HANDOUTS
        ),
    }


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
    technique = forms.technique_line(_technique_details(p, values))
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
                    "complications": complications,
                    **_exceedance(values),
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
        b = bundle_of(web, episode_id)
        return _session_page(request, web, b, values, p.errors(), 422)
    kb = kb_of(web)
    try:
        session = web.run(
            "session.create",
            lambda uow, note_: clinical.record_session(
                uow, note_, web.actor, episode_id, body, kb, web.state.clock()
            ),
        )
    except InvalidInput as exc:  # the safety kernel refused it: nothing was stored
        b = bundle_of(web, episode_id)
        errors = forms.refusal_errors(exc.problems, {"sites": "sites[0].muscle"})
        return _session_page(request, web, b, values, errors, 422)
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
                relation="before",
                note="before the injection",
            ),
            web.state.clock(),
        ),
    )
    return redirect(f"{PREFIX}/sessions/{session.id}?saved=session-{episode_id}")


def _exceedance(values: forms.Values) -> dict[str, str]:
    """The reason for knowingly exceeding a dose limit, when typed (the safety kernel
    stores such a session as a safety event; without a reason it refuses it)."""
    reason = forms.one(values, "exceedance_reason")
    return {"exceedance_reason": reason} if reason else {}


def _session_context(web: WebSession, session_id: UUID, action: str) -> tuple[Record, Bundle]:
    return record_bundle(web, "session", session_id, action)


def _procedure_note(
    web: WebSession, session_id: UUID, action: str
) -> tuple[docs.Document, Record, Bundle]:
    record, b = _session_context(web, session_id, action)
    s = b.session_data(record)
    kb = kb_of(web)
    plan: ProcedurePlan | None = None
    indication = None
    if s.plan_id is not None:
        try:
            _, a_record, _, _, plan = plan_context(web, s.plan_id, "plan.read")
            indication = b.assessment(a_record).result
        except InvalidInput:
            plan = None
    if indication is None and b.latest_assessment is not None:
        indication = b.assessment(b.latest_assessment).result
    weight = (
        b.assessment(b.latest_assessment).input.patient.weight_kg if b.latest_assessment else None
    )
    regions = EpisodeData.model_validate(b.episode.current.data).regions
    proc = procedure_record(s, regions)
    doc = docs.procedure_note(
        proc, kb, patient_line(web, b, weight), plan=plan, indication=indication
    )
    return doc, record, b


@router.get(f"{PREFIX}/sessions/{{session_id}}")
def session_view(request: Request, web: Web, session_id: UUID) -> HTMLResponse:
    doc, record, b = _procedure_note(web, session_id, "session.read")
    return bundle_page(
        request,
        "session_view.html",
        web,
        b,
        record=record,
        s=b.session_data(record),
        doc=doc,
    )


@router.get(f"{PREFIX}/sessions/{{session_id}}/note")
def session_note(
    web: Web, session_id: UUID, format: Annotated[str, Query(pattern="^(html|pdf)$")] = "html"
) -> Response:
    doc, _, _ = _procedure_note(web, session_id, "document.read")
    return doc_response(doc, format)


def _outcome_page(
    request: Request,
    web: WebSession,
    b: Bundle,
    values: forms.Values,
    errors: dict[str, list[str]],
    status_code: int = 200,
) -> HTMLResponse:
    kb = kb_of(web)
    ed = EpisodeData.model_validate(b.episode.current.data)
    regions = set(ed.regions)
    instruments: dict[str, Instrument] = {i.id: i for i in kb.instruments.instruments}
    show = [
        i
        for i in ("peg", "odi", "ndi", "startback")
        if not instruments[i].regions or regions & set(instruments[i].regions)
    ]
    return bundle_page(
        request,
        "outcome.html",
        web,
        b,
        status_code=status_code,
        values=values,
        errors=errors,
        session_options=[
            (str(s.id), b.session_data(s).performed_at.strftime("%Y-%m-%d %H:%M %Z"))
            for s in b.sessions
        ],
        instruments=[instruments[i] for i in show],
        draft_key=f"outcome-{b.episode.id}",
    )


@router.get(f"{PREFIX}/episodes/{{episode_id}}/outcomes/new")
def outcome_page(
    request: Request, web: Web, episode_id: UUID, session: UUID | None = None
) -> HTMLResponse:
    b = bundle_of(web, episode_id)
    values: forms.Values = {"measured_on": web.today.isoformat()}
    chosen = session or (b.sessions[-1].id if b.sessions else None)
    if chosen:
        values["session_id"] = str(chosen)
    return _outcome_page(request, web, b, values, {})


@router.post(f"{PREFIX}/episodes/{{episode_id}}/outcomes/new")
def outcome_submit(request: Request, web: Web, form: Posted, episode_id: UUID) -> Response:
    web.call("outcome.create").authorise()  # refuse before validating
    values = forms.values_of(form)
    kb = kb_of(web)
    p = forms.Parsed()
    measured: date | None = None
    try:
        measured = date.fromisoformat(forms.one(values, "measured_on"))
        if measured > web.today:
            p.add("measured_on", "is in the future")
    except ValueError:
        p.add("measured_on", "enter a date (YYYY-MM-DD)")
    session_raw = forms.one(values, "session_id")
    session_id: UUID | None = None
    try:
        session_id = UUID(session_raw) if session_raw else None
    except ValueError:
        p.add("session_id", "choose one of the sessions listed")
    relation = forms.one(values, "relation") or None
    if relation not in (None, *RELATIONS):
        p.add("relation", "choose before or after the session")
        relation = None
    if relation is not None and session_id is None:
        p.add("relation", "choose the session it was measured before or after")
    items: list[OutcomeData] = []
    nrs = forms.number(p, values, "nrs", whole=True)
    if nrs is not None and not 0 <= nrs <= 10:
        p.add("nrs", "a pain score is 0-10")
    relief = forms.number(p, values, "relief_days")
    if relief is not None and not 0 <= relief <= 365:
        p.add("relief_days", "0-365 days")
    answers: dict[str, list[int | None]] = {}
    for inst, count in (("peg", 3), ("odi", 10), ("ndi", 10), ("startback", 9)):
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
        b = bundle_of(web, episode_id)
        return _outcome_page(request, web, b, values, p.errors(), 422)
    common: dict[str, Any] = {
        "measured_on": measured,
        "session_id": session_id,
        "relation": relation,
    }
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
        for item in items:  # one unit of work: a refused item stores none of them
            try:
                clinical.record_outcome(uow, note, web.actor, episode_id, item, web.state.clock())
            except InvalidInput as exc:
                raise type(exc)(_outcome_problems(exc.problems, item.instrument)) from None

    try:
        web.run("outcome.create", run)
    except InvalidInput as exc:
        b = bundle_of(web, episode_id)
        return _outcome_page(request, web, b, values, forms.refusal_errors(exc.problems), 422)
    return redirect(f"{PREFIX}/episodes/{episode_id}/course?saved=outcome-{episode_id}")


def _outcome_problems(problems: Sequence[FieldProblem], instrument: str) -> list[FieldProblem]:
    """A refused outcome's problems named by the form field it came from (``value`` of the
    ODI item -> ``odi``), keeping the kernel's rule and statement ids."""
    field_of = {"value": instrument, "items": instrument, "instrument": instrument}
    return [replace(p, field=field_of.get(forms.form_field(p.field), p.field)) for p in problems]


@router.get(f"{PREFIX}/episodes/{{episode_id}}/course")
def course_page(request: Request, web: Web, episode_id: UUID) -> HTMLResponse:
    b = bundle_of(web, episode_id)
    return page(request, "course.html", web, **course_page_context(web, b))


@router.get(f"{PREFIX}/episodes/{{episode_id}}/reevaluation")
def reevaluation_document(
    web: Web, episode_id: UUID, format: Annotated[str, Query(pattern="^(html|pdf)$")] = "html"
) -> Response:
    b = bundle_of(web, episode_id, "document.read")
    report, problems = course_of(web, b)
    if report is None:
        raise InvalidInput(problems or [FieldProblem("assessment", "record an assessment first")])
    weight = (
        b.assessment(b.latest_assessment).input.patient.weight_kg if b.latest_assessment else None
    )
    doc = docs.reevaluation_summary(report, kb_of(web), patient_line(web, b, weight), on=web.today)
    return doc_response(doc, format)
