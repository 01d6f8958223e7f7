"""The assessment form (grouped like an examination, body map) and the recommendation."""

from __future__ import annotations

import json
from datetime import date
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from triggerpath.adapters.bodymap import render_body_map
from triggerpath.adapters.documents import letters_for
from triggerpath.entrypoints.web import forms
from triggerpath.entrypoints.web.common import (
    Posted,
    age_of,
    assessment_bundle,
    bundle_of,
    bundle_page,
    kb_of,
)
from triggerpath.entrypoints.web.support import (
    PREFIX,
    Web,
    WebRoute,
    WebSession,
    cited_ids,
    redirect,
)
from triggerpath.knowledge.schema import REGIONS
from triggerpath.services import clinical
from triggerpath.services.episodes import (
    Bundle,
)
from triggerpath.services.payloads import (
    AssessmentIn,
    EpisodeData,
)
from triggerpath.services.records import Write

router = APIRouter(route_class=WebRoute, include_in_schema=False)


def _assessment_page(
    request: Request,
    web: WebSession,
    b: Bundle,
    values: forms.Values,
    errors: dict[str, list[str]],
    status_code: int = 200,
    copied: tuple[dict[str, str], str] | None = None,
) -> HTMLResponse:
    kb = kb_of(web)
    latest = b.latest_assessment
    selected = [
        (
            forms.one(values, f"trigger_points[{i}].muscle"),
            forms.one(values, f"trigger_points[{i}].side") or "left",
        )
        for i in forms.tp_indices(values)
    ]
    return bundle_page(
        request,
        "assess.html",
        web,
        b,
        status_code=status_code,
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
        copied_marks=copied[0] if copied else {},
        copied_from=copied[1] if copied else None,
        last_exam=b.assessment(latest).as_of.isoformat() if latest is not None else None,
    )


def _fresh_values(web: WebSession, b: Bundle) -> forms.Values:
    """A new assessment: only what the patient and episode records say, no findings."""
    pd = b.patient_data
    ed = EpisodeData.model_validate(b.episode.current.data)
    values: forms.Values = {
        "patient.sex": pd.sex,
        "regions": list(ed.regions),
        "as_of": web.today.isoformat(),
    }
    age = age_of(pd, web.today)
    if age is not None:
        values["patient.age_years"] = str(age)
    if ed.onset:
        values["pain.duration_weeks"] = f"{(web.today - ed.onset).days / 7:.0f}"
    return values


def copied_values(b: Bundle, today: date) -> tuple[forms.Values, dict[str, str], str]:
    """The last examination as form values, the names copied (each marked with its date)
    and that date; the assessment date is today's, never copied."""
    latest = b.latest_assessment
    assert latest is not None
    data = b.assessment(latest)
    values = forms.assessment_values(data.input, today)
    when = data.as_of.isoformat()
    marks = {k: when for k in values if k != "as_of"}
    return values, marks, when


@router.get(f"{PREFIX}/episodes/{{episode_id}}/assess")
def assess_page(
    request: Request, web: Web, episode_id: UUID, copy: str | None = None
) -> HTMLResponse:
    """A reassessment starts empty; ``?copy=last`` starts from the last examination with
    every copied field marked "copied from DATE" until the clinician confirms it."""
    b = bundle_of(web, episode_id)
    latest = b.latest_assessment
    if latest is not None and copy == "last":
        values, marks, when = copied_values(b, web.today)
        return _assessment_page(request, web, b, values, {}, copied=(marks, when))
    return _assessment_page(request, web, b, _fresh_values(web, b), {})


@router.post(f"{PREFIX}/episodes/{{episode_id}}/assess")
def assess_submit(request: Request, web: Web, form: Posted, episode_id: UUID) -> Response:
    web.call("assessment.create").authorise()  # refuse before validating
    values = forms.values_of(form)
    kb = kb_of(web)
    assessment, as_of, parsed = forms.parse_assessment_form(values, kb)
    copied_from = forms.one(values, "copied_from")
    if copied_from and forms.one(values, "confirm_copied") != "on":
        parsed.add(
            "confirm_copied",
            f"confirm the findings copied from {copied_from} (re-examine and change what differs)",
        )
        assessment = None
    if assessment is None:
        b = bundle_of(web, episode_id)
        copied = None
        if copied_from and b.latest_assessment is not None:
            marks = dict.fromkeys(copied_values(b, web.today)[1], copied_from)
            copied = (marks, copied_from)
        return _assessment_page(request, web, b, values, parsed.errors(), 422, copied=copied)
    body = AssessmentIn(input=assessment, as_of=as_of or web.today)
    record = web.run(
        "assessment.create",
        lambda uow, note: clinical.create(
            Write(uow, note, web.actor, web.state.clock(), kb, web.today),
            "assessment",
            episode_id,
            body,
        ),
    )
    return redirect(f"{PREFIX}/assessments/{record.id}?saved=assess-{episode_id}")


@router.get(f"{PREFIX}/assessments/{{assessment_id}}")
def assessment_view(request: Request, web: Web, assessment_id: UUID) -> HTMLResponse:
    record, b = assessment_bundle(web, assessment_id, "assessment.read")
    data = b.assessment(record)
    kb = kb_of(web)
    rec = data.result
    tps = [(tp.muscle, tp.side) for tp in data.input.trigger_points]
    return bundle_page(
        request,
        "recommendation.html",
        web,
        b,
        record=record,
        data=data,
        rec=rec,
        kb=kb,
        statements=kb.statements,
        cited=cited_ids(rec),
        body_map=render_body_map(
            kb, selected=tps, zones=tps, interactive=False, title="Trigger points examined"
        ),
        plans=b.plans.get(record.id, []),
        letters=letters_for(rec, kb),
    )
