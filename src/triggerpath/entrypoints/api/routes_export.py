"""The episode for the EHR: a FHIR R4 transaction Bundle with the PDFs (issue 17 §5).

``GET /api/v1/episodes/{episode_id}/fhir-bundle`` (action ``episode.export``) answers the
Bundle of :mod:`triggerpath.adapters.fhir_r4.export`: Patient, a Procedure per session,
pain Observations, the CarePlan of the latest assessment and a DocumentReference per
document (each session's procedure note, the episode summary and the referral letters kept
with the record), the PDF inline. The web app's "Export to EHR (FHIR)" link serves the
same Bundle (:func:`export_episode`).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Response

from triggerpath.adapters import documents as docs
from triggerpath.adapters.fhir_r4.export import Attachment, episode_bundle
from triggerpath.entrypoints.api.deps import State, action
from triggerpath.entrypoints.api.problems import PROBLEM_RESPONSES
from triggerpath.knowledge.loader import Knowledge
from triggerpath.services import clinical, episodes
from triggerpath.services.audit import AuditNote, Call
from triggerpath.services.episodes import Bundle
from triggerpath.services.payloads import DocumentData, EpisodeData
from triggerpath.services.uow import UnitOfWork

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
FHIR_JSON = "application/fhir+json"


def _kept_letters(b: Bundle) -> list[Attachment]:
    """Referral letters kept (as PDF) from an assessment of this episode."""
    ours = {a.id for a in b.assessments}
    out: list[Attachment] = []
    for d in b.documents:
        data = DocumentData.model_validate(d.current.data)
        if data.kind == "referral_letter" and data.source_id in ours:
            out.append(Attachment(data.kind, data.title, data.content(), d.created_at, final=True))
    return out


def export_episode(
    uow: UnitOfWork, note: AuditNote, episode_id: UUID, kb: Knowledge, *, today: date, now: datetime
) -> dict[str, Any]:
    """The stored episode as a FHIR R4 transaction Bundle, its documents as PDF."""
    b = episodes.load_bundle(uow, note, episode_id)
    _, policy = clinical.current_policy(uow)
    patient = docs.episode_patient(b, kb, policy, on=today)
    notes = [
        Attachment(
            "procedure_note",
            n.document.title,
            docs.render_pdf(n.document),
            n.session.current.recorded_at,
            final=n.session.signed,
            session_id=n.session.id,
        )
        for n in docs.session_notes(b, kb, patient)
    ]
    summary = docs.episode_summary_document(b, kb, policy, on=today)
    closed = EpisodeData.model_validate(b.episode.current.data).status == "closed"
    notes.append(Attachment(summary.kind, summary.title, docs.render_pdf(summary), now, closed))
    latest = b.latest_assessment
    return episode_bundle(
        b,
        kb,
        recommendation=b.assessment(latest).result if latest else None,
        planned_at=latest.created_at if latest else now,
        documents=[*notes, *_kept_letters(b)],
    )


@router.get(
    "/episodes/{episode_id}/fhir-bundle",
    tags=["episodes"],
    response_class=Response,
    responses={200: {"content": {FHIR_JSON: {}}, "description": "a FHIR R4 Bundle"}},
)
def episode_fhir_bundle(
    episode_id: UUID, state: State, call: Annotated[Call, action("episode.export")]
) -> Response:
    """The episode for the EHR as a FHIR R4 transaction Bundle: Patient (conditional create
    on the MRN), a Procedure per session, pain Observations, the CarePlan of the latest
    assessment and a DocumentReference per document with the PDF (procedure notes, the
    episode summary, kept referral letters)."""
    bundle = call.run(
        lambda uow, note: export_episode(
            uow, note, episode_id, state.kb, today=state.today(), now=call.now
        )
    )
    return fhir_download(bundle, episode_id)


def fhir_download(bundle: dict[str, Any], episode_id: UUID) -> Response:
    """The Bundle as a file to save (the API and the web app's link answer alike)."""
    return Response(
        json.dumps(bundle),
        media_type=FHIR_JSON,
        headers={
            "Content-Disposition": f'attachment; filename="episode-{episode_id}.fhir.json"',
            "X-Content-Type-Options": "nosniff",
        },
    )
