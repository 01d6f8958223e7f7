"""The editable re-evaluation worksheet and medial branch block entry (issue 17 §7).

The course engine lays the worksheet out (``CourseReport.reevaluation``: technical review,
perpetuating factors, failure risk factors, differential diagnosis) with what the record
shows for each line. The clinician ticks each line checked, writes what they found and a
conclusion; the filled-in worksheet is kept as a JSON document of the patient (kind
``reevaluation_worksheet``, source = the episode), so it is versioned and audited like every
other document. Saving again keeps a new document; the course page shows the latest.

A diagnostic medial branch block (date, level, relief %) is kept the same way (kind
``medial_branch_block``); the course engine reads them (``services.episodes``) for its
radiofrequency ablation decision (S000.32, clinic policy ``rfa_rule``).
"""

from __future__ import annotations

import base64
import json
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from triggerpath.domain import integrity
from triggerpath.domain.episode import MedialBranchBlock
from triggerpath.domain.reevaluation import Worksheet
from triggerpath.domain.validation import problems_from
from triggerpath.entrypoints.web import forms
from triggerpath.entrypoints.web.chart import trend_svg
from triggerpath.entrypoints.web.common import Posted, bundle_of, course_of, kb_of
from triggerpath.entrypoints.web.support import (
    PREFIX,
    Web,
    WebRoute,
    WebSession,
    cited_ids,
    page,
    redirect,
)
from triggerpath.errors import FieldProblem
from triggerpath.services import clinical
from triggerpath.services.episodes import MBB_KIND, Bundle, trend
from triggerpath.services.payloads import DocumentData, DocumentIn

router = APIRouter(route_class=WebRoute, include_in_schema=False)
KIND = "reevaluation_worksheet"
FINDING_MAX = 500
CONCLUSION_MAX = 2000
#: worksheet sections: (key prefix, heading, attribute of the engine's worksheet)
SECTIONS = (
    ("tech", "1. Technical review", "technical_review"),
    ("perp", "2. Perpetuating factors", "perpetuating_factors"),
    ("risk", "3. Risk factors for failure", "failure_risk_factors"),
    ("diff", "4. Differential diagnosis", "differential"),
)


def worksheet_rows(ws: Worksheet) -> list[tuple[str, list[tuple[str, Any]]]]:
    """(heading, [(form key, engine line)]) for each section, in order."""
    return [
        (heading, [(f"{prefix}.{item.id}", item) for item in getattr(ws, attr)])
        for prefix, heading, attr in SECTIONS
    ]


def saved_worksheet(b: Bundle) -> tuple[dict[str, Any], Any] | None:
    """The latest filled-in worksheet of the episode and its record, or None."""
    kept = [
        d
        for d in b.documents
        if d.current.data.get("kind") == KIND
        and d.current.data.get("source_id") == str(b.episode.id)
    ]
    if not kept:
        return None
    latest = max(kept, key=lambda r: r.created_at)
    doc = DocumentData.model_validate(latest.current.data)
    content: dict[str, Any] = json.loads(doc.content())
    return content, latest


def _values(saved: dict[str, Any] | None) -> forms.Values:
    """The form values of a saved worksheet (what the page shows to edit)."""
    if not saved:
        return {}
    values: forms.Values = {"conclusion": str(saved.get("conclusion", ""))}
    for key, item in saved.get("items", {}).items():
        values[f"{key}.finding"] = str(item.get("finding", ""))
        if item.get("checked"):
            values[f"{key}.checked"] = "on"
    return values


def course_page_context(web: WebSession, b: Bundle) -> dict[str, Any]:
    """What the course page shows, the worksheet form included."""
    report, problems = course_of(web, b)
    t = trend(b)
    saved = saved_worksheet(b)
    return {
        "b": b,
        "pd": b.patient_data,
        "report": report,
        "course_problems": problems,
        "chart": trend_svg(t),
        "series": t,
        "kb": kb_of(web),
        "ws_rows": worksheet_rows(report.reevaluation) if report and report.reevaluation else [],
        "ws_values": _values(saved[0] if saved else None),
        "ws_saved": saved[1] if saved else None,
        "ws_errors": {},
        "mbb_values": {},
        "mbb_errors": {},
        "cited": cited_ids(report) if report else [],
    }


def _parse(values: forms.Values, ws: Worksheet) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The worksheet to keep and the problems, by form field (plain language)."""
    errors: dict[str, list[str]] = {}
    items: dict[str, Any] = {}
    for _, rows in worksheet_rows(ws):
        for key, item in rows:
            finding = forms.one(values, f"{key}.finding").strip()
            if len(finding) > FINDING_MAX:
                errors[f"{key}.finding"] = [f"at most {FINDING_MAX} characters"]
            items[key] = {
                "title": getattr(item, "title", None) or getattr(item, "name", key),
                "engine_status": item.status,
                "checked": forms.one(values, f"{key}.checked") == "on",
                "finding": finding,
            }
    conclusion = forms.one(values, "conclusion").strip()
    if len(conclusion) > CONCLUSION_MAX:
        errors["conclusion"] = [f"at most {CONCLUSION_MAX} characters"]
    return {"items": items, "conclusion": conclusion}, errors


def _keep(web: WebSession, b: Bundle, kind: str, title: str, content: bytes) -> None:
    """Keep ``content`` (JSON) as a document of the patient, its source the episode."""
    body = DocumentIn(
        kind=kind,
        title=title,
        media_type="application/json",
        content_base64=base64.b64encode(content).decode(),
        source_id=b.episode.id,
        knowledge_version=kb_of(web).version,
    )
    web.run(
        "document.create",
        lambda uow, note: clinical.record_document(
            uow, note, web.actor, b.patient.id, body, web.state.clock()
        ),
    )


@router.post(f"{PREFIX}/episodes/{{episode_id}}/worksheet")
def worksheet_submit(request: Request, web: Web, form: Posted, episode_id: UUID) -> Response:
    web.call("document.create").authorise()  # refuse before reading the form
    b = bundle_of(web, episode_id)
    values = forms.values_of(form)
    context = course_page_context(web, b)
    report = context["report"]
    if report is None or report.reevaluation is None:
        context["ws_errors"] = {"worksheet": ["no re-evaluation is open for this episode"]}
        return page(request, "course.html", web, status_code=422, **context)
    content, errors = _parse(values, report.reevaluation)
    if errors:
        context.update(ws_values=values, ws_errors=errors)
        return page(request, "course.html", web, status_code=422, **context)
    content["episode_id"] = str(episode_id)
    _keep(web, b, KIND, "Re-evaluation worksheet", json.dumps(content).encode())
    return redirect(f"{PREFIX}/episodes/{episode_id}/course?saved=worksheet#worksheet")


def _block(
    values: forms.Values, web: WebSession
) -> tuple[MedialBranchBlock | None, list[FieldProblem]]:
    """The block posted, or the problems by form field (``mbb.date``, ``mbb.relief_pct`` ...)."""
    p = forms.Parsed()
    relief = forms.number(p, values, "mbb.relief_pct")
    if relief is None and not p.problems:
        p.add("mbb.relief_pct", "enter the relief of the index pain, 0-100 %")
    raw = {
        "date": forms.one(values, "mbb.date") or None,
        "level": forms.one(values, "mbb.level") or None,
        "relief_pct": relief,
    }
    if p.problems:
        return None, p.problems
    try:
        block = MedialBranchBlock.model_validate(raw)
    except ValidationError as err:
        return None, [FieldProblem(f"mbb.{q.field}", q.reason) for q in problems_from(err)]
    future = (
        integrity.future_date_problem("mbb.date", block.date, web.state.clock())
        if block.date
        else None
    )
    return (None, [future]) if future else (block, [])


@router.post(f"{PREFIX}/episodes/{{episode_id}}/blocks")
def block_submit(request: Request, web: Web, form: Posted, episode_id: UUID) -> Response:
    web.call("document.create").authorise()  # refuse before reading the form
    b = bundle_of(web, episode_id)
    values = forms.values_of(form)
    block, problems = _block(values, web)
    if block is None:
        context = course_page_context(web, b)
        context.update(mbb_values=values, mbb_errors=forms.refusal_errors(problems))
        return page(request, "course.html", web, status_code=422, **context)
    _keep(web, b, MBB_KIND, "Medial branch block", block.model_dump_json().encode())
    return redirect(f"{PREFIX}/episodes/{episode_id}/course?saved=block#blocks")
