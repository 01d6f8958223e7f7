"""An episode of care as one FHIR R4 transaction Bundle, for the EHR (issue 17 §5).

The Bundle holds, for one stored episode:

- ``Patient``: MRN identifier, names, administrative gender, date of birth, created only if
  the EHR has no patient with that MRN (conditional create, ``ifNoneExist``);
- one ``Procedure`` per recorded session (CPT 20552/20553, :func:`write.tpi_procedure`);
- one ``Observation`` per recorded pain score (LOINC 72514-3), part of its session;
- a ``CarePlan`` from the latest assessment (:func:`write.care_plan`);
- one ``DocumentReference`` per document, the PDF as a base64 attachment with its SHA-1
  (FHIR R4 ``Attachment.hash``): the procedure notes, the episode summary, referral letters.

Every resource is built with the ``fhir.resources`` R4B models (the elements used are the same
in R4 4.0.1) and the tests validate the whole Bundle against the FHIR R4 JSON schema.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.patient import Patient

from triggerpath.adapters.fhir_r4.write import (
    TRIGGERPATH_URI,
    InjectionSite,
    TpiSession,
    _dump,
    _instant,
    care_plan,
    pain_observation,
    stable_id,
    tpi_procedure,
    transaction_bundle,
)
from triggerpath.domain.recommendation import Recommendation
from triggerpath.knowledge.loader import Knowledge
from triggerpath.services.episodes import Bundle
from triggerpath.services.payloads import PatientData, SessionData

#: The clinic's MRN namespace (a real deployment names its own, e.g. an OID).
MRN_SYSTEM = f"{TRIGGERPATH_URI}/NamingSystem/mrn"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
LOINC = "http://loinc.org"
#: LOINC document types of the documents TriggerPath writes.
DOCUMENT_TYPES = {
    "procedure_note": ("28570-0", "Procedure note"),
    "episode_summary": ("34133-9", "Summary of episode note"),
    "referral_letter": ("57133-1", "Referral note"),
}


@dataclass(frozen=True, slots=True)
class Attachment:
    """A generated document to export: its kind, title, the PDF and what it is about."""

    kind: str
    title: str
    pdf: bytes
    created: datetime
    final: bool = False
    #: the session a procedure note records (its Procedure is the DocumentReference context)
    session_id: UUID | None = None


def patient_resource(patient_id: UUID, pd: PatientData) -> dict[str, Any]:
    """The patient with the MRN as identifier (and names, date of birth when recorded)."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(patient_id),
        "identifier": [
            {
                "use": "usual",
                "type": {"coding": [{"system": IDENTIFIER_TYPE, "code": "MR"}]},
                "system": MRN_SYSTEM,
                "value": pd.mrn,
            }
        ],
        "gender": pd.sex,
    }
    if pd.family_name or pd.given_name:
        name: dict[str, Any] = {"use": "official"}
        if pd.family_name:
            name["family"] = pd.family_name
        if pd.given_name:
            name["given"] = pd.given_name.split()
        resource["name"] = [name]
    if pd.birth_date is not None:
        resource["birthDate"] = pd.birth_date.isoformat()
    return _dump(Patient.model_validate(resource))


def _tpi_session(patient_id: str, s: SessionData, kb: Knowledge) -> TpiSession:
    """The session for the Procedure writer: its sites and its first local anesthetic."""
    la = next(
        (x for x in s.sites if kb.injectates.agent(x.agent) and x.concentration_percent),
        None,
    )
    total = (
        sum(
            (Decimal(str(x.volume_ml)) for x in s.sites if la and x.agent == la.agent),
            Decimal(0),
        )
        if la
        else None
    )
    return TpiSession(
        patient_id=patient_id,
        performed_at=s.performed_at,
        sites=[InjectionSite(x.muscle, x.side) for x in s.sites],
        agent=la.agent if la else None,
        percent=Decimal(str(la.concentration_percent)) if la else None,
        total_ml=total,
        epinephrine=bool(la and la.epinephrine),
    )


def document_reference(
    patient_id: str, doc: Attachment, context: str | None = None
) -> dict[str, Any]:
    """A generated PDF as a DocumentReference (the PDF inline, base64, with its SHA-1)."""
    code, display = DOCUMENT_TYPES.get(doc.kind, ("11506-3", "Progress note"))
    ref: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": stable_id("document", patient_id, doc.kind, doc.title, doc.session_id or ""),
        "status": "current",
        "docStatus": "final" if doc.final else "preliminary",
        "type": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": _instant(doc.created, "created"),
        "description": doc.title,
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "data": base64.b64encode(doc.pdf).decode(),
                    "title": doc.title,
                    "size": len(doc.pdf),
                    "hash": base64.b64encode(hashlib.sha1(doc.pdf).digest()).decode(),
                    "creation": _instant(doc.created, "created"),
                }
            }
        ],
    }
    if context:
        ref["context"] = {"related": [{"reference": context}]}
    return _dump(DocumentReference.model_validate(ref))


def _pain_scores(b: Bundle, pid: str, procedures: dict[UUID, str], kb: Knowledge) -> list[Any]:
    out: list[dict[str, Any]] = []
    for o in b.outcomes:
        od = b.outcome_data(o)
        if od.instrument != "nrs":
            continue
        part_of = procedures.get(od.session_id) if od.session_id else None
        obs = pain_observation(
            pid, int(od.value), o.created_at, kb, part_of=part_of, resource_id=str(o.id)
        )
        obs["effectiveDateTime"] = od.measured_on.isoformat()  # measured on a day, not a time
        out.append(obs)
    return out


def episode_bundle(
    b: Bundle,
    kb: Knowledge,
    *,
    recommendation: Recommendation | None,
    planned_at: datetime,
    documents: Sequence[Attachment],
) -> dict[str, Any]:
    """The episode as a transaction Bundle (see the module docstring)."""
    pid = str(b.patient.id)
    resources: list[dict[str, Any]] = [patient_resource(b.patient.id, b.patient_data)]
    procedures: dict[UUID, str] = {}
    for s in b.sessions:
        proc = tpi_procedure(_tpi_session(pid, b.session_data(s), kb), kb)
        procedures[s.id] = f"Procedure/{proc['id']}"
        resources.append(proc)
    resources += _pain_scores(b, pid, procedures, kb)
    if recommendation is not None:
        resources.append(care_plan(recommendation, kb, patient_id=pid, now=planned_at))
    resources += [
        document_reference(pid, d, procedures.get(d.session_id) if d.session_id else None)
        for d in documents
    ]
    bundle = transaction_bundle(resources)
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["request"]["ifNoneExist"] = f"identifier={MRN_SYSTEM}|{b.patient_data.mrn}"
    return bundle
