"""Referral letters, closing an episode with its summary, and the EHR export (issue 17 §5).

- ``/assessments/{id}/letters/{key}``: the referral letter for one redirect or red flag of a
  recorded assessment (HTML or PDF); ``.../keep`` keeps the PDF with the patient's record.
- ``/episodes/{id}/close``: closes the episode (a new version with status ``closed`` and the
  closing date, through the safety kernel) and keeps the episode summary PDF with the record.
- ``/episodes/{id}/summary``: the episode summary (HTML or PDF).
- ``/episodes/{id}/fhir``: the episode as a FHIR R4 Bundle, the same as the API's
  ``GET /api/v1/episodes/{id}/fhir-bundle``.
"""

from __future__ import annotations

import base64
from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import ValidationError

from triggerpath.adapters import documents as docs
from triggerpath.domain.validation import problems_from
from triggerpath.entrypoints.api.routes_export import export_episode, fhir_download
from triggerpath.entrypoints.web import forms
from triggerpath.entrypoints.web.common import (
    Posted,
    assessment_bundle,
    bundle_of,
    doc_response,
    kb_of,
    patient_line,
)
from triggerpath.entrypoints.web.support import PREFIX, Web, WebRoute, WebSession, redirect
from triggerpath.errors import InvalidInput
from triggerpath.services import clinical
from triggerpath.services.audit import AuditNote
from triggerpath.services.episodes import Bundle
from triggerpath.services.payloads import DocumentIn, EpisodeData
from triggerpath.services.uow import UnitOfWork

router = APIRouter(route_class=WebRoute, include_in_schema=False)
Format = Annotated[str, Query(pattern="^(html|pdf)$")]


def _letter(web: WebSession, assessment_id: UUID, key: str) -> tuple[docs.Document, Bundle]:
    record, b = assessment_bundle(web, assessment_id, "document.read")
    rec = b.assessment(record).result
    letters = docs.referral_letters(
        rec, kb_of(web), patient_line(web, b), on=web.today, author=web.actor.username
    )
    found = next((d for d in letters if d.key == key), None)
    if found is None:
        raise InvalidInput.single("letter", f"this assessment calls for no referral {key!r}")
    return found, b


def _keep(web: WebSession, b: Bundle, doc: docs.Document, source_id: UUID) -> None:
    """Keep ``doc`` as PDF with the patient's record (digest and size kept too)."""
    pdf = docs.render_pdf(doc)
    body = DocumentIn(
        kind=doc.kind,
        title=doc.title,
        media_type="application/pdf",
        content_base64=base64.b64encode(pdf).decode(),
        source_id=source_id,
        knowledge_version=kb_of(web).version,
    )
    web.run(
        "document.create",
        lambda uow, note: clinical.record_document(
            uow, note, web.actor, b.patient.id, body, web.state.clock()
        ),
    )


@router.get(f"{PREFIX}/assessments/{{assessment_id}}/letters/{{key}}")
def referral_letter(web: Web, assessment_id: UUID, key: str, format: Format = "html") -> Response:
    doc, _ = _letter(web, assessment_id, key)
    return doc_response(doc, format)


@router.post(f"{PREFIX}/assessments/{{assessment_id}}/letters/{{key}}/keep")
def keep_referral_letter(web: Web, form: Posted, assessment_id: UUID, key: str) -> Response:
    doc, b = _letter(web, assessment_id, key)
    _keep(web, b, doc, assessment_id)
    return redirect(f"{PREFIX}/assessments/{assessment_id}?kept=letter")


def _summary(web: WebSession, b: Bundle) -> docs.Document:
    with web.state.uow_factory() as uow:
        _, policy = clinical.current_policy(uow)
    return docs.episode_summary_document(b, kb_of(web), policy, on=web.today)


@router.get(f"{PREFIX}/episodes/{{episode_id}}/summary")
def episode_summary(web: Web, episode_id: UUID, format: Format = "html") -> Response:
    return doc_response(_summary(web, bundle_of(web, episode_id, "document.read")), format)


@router.post(f"{PREFIX}/episodes/{{episode_id}}/close")
def close_episode(web: Web, form: Posted, episode_id: UUID) -> Response:
    """Close the episode (kernel-checked correction) and keep its summary with the record."""
    values = forms.values_of(form)
    b = bundle_of(web, episode_id, "episode.read")
    current = EpisodeData.model_validate(b.episode.current.data)
    try:
        closed_on = date.fromisoformat(forms.one(values, "closed_on") or web.today.isoformat())
    except ValueError:
        raise InvalidInput.single("closed_on", "enter the closing date as YYYY-MM-DD") from None
    try:  # closed_on after the onset (the payload's own rule)
        data = EpisodeData.model_validate(
            {**current.model_dump(), "status": "closed", "closed_on": closed_on}
        )
    except ValidationError as err:
        raise InvalidInput(problems_from(err)) from None
    closed = web.run(
        "episode.correct",
        lambda uow, note: clinical.correct_episode(
            uow,
            note,
            web.actor,
            episode_id,
            expected=b.episode.version,
            reason=f"episode closed on {closed_on.isoformat()}",
            data=data,
            now=web.state.clock(),
        ),
    )
    b.episode = closed
    _keep(web, b, _summary(web, b), episode_id)
    return redirect(f"{PREFIX}/episodes/{episode_id}?closed=1")


@router.get(f"{PREFIX}/episodes/{{episode_id}}/fhir")
def episode_fhir(web: Web, episode_id: UUID) -> Response:
    def run(uow: UnitOfWork, note: AuditNote) -> dict[str, object]:
        return export_episode(
            uow, note, episode_id, kb_of(web), today=web.today, now=web.state.clock()
        )

    return fhir_download(web.run("episode.export", run), episode_id)
