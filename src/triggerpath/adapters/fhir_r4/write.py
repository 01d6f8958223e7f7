"""Write TriggerPath results and session records as FHIR R4 (4.0.1) resources.

Every resource is built and checked with the ``fhir.resources`` R4B models (the
elements used here are the same in R4 4.0.1) and returned as plain JSON-ready
dicts; the tests validate each one against the official FHIR R4 JSON schema.

- :func:`recommendation_resources`: a ``Recommendation`` as a RequestGroup (what
  to do next, cautions, what to record) and a GuidanceResponse (verdict, reasons
  with statement ids, knowledge version) whose ``result`` is the RequestGroup.
- :func:`care_plan`: the comprehensive plan (S000.25) as a CarePlan.
- :func:`tpi_procedure`, :func:`anesthetic_administration`,
  :func:`pain_observation`, :func:`weight_observation`: the record of a session.
- :func:`referral_request`: a referral ServiceRequest (physical therapy, epidural
  steroid injection …), also used by CDS Hooks suggestions.

Codes come from the value sets of the knowledge base. Ids are deterministic
(UUID v5 of the content) unless given, so writing the same thing twice gives
the same resource.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.guidanceresponse import GuidanceResponse
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.requestgroup import RequestGroup
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.servicerequest import ServiceRequest

from triggerpath.domain.recommendation import Recommendation, Verdict
from triggerpath.errors import FieldProblem, InvalidInput
from triggerpath.knowledge.loader import Knowledge

FHIR_VERSION = "4.0.1"
#: Base of TriggerPath's own identifiers (code systems, knowledge module).
TRIGGERPATH_URI = "https://triggerpath.example/fhir"
VERDICT_SYSTEM = f"{TRIGGERPATH_URI}/CodeSystem/verdict"
CAUTION_SYSTEM = f"{TRIGGERPATH_URI}/CodeSystem/caution"
STATEMENT_SYSTEM = f"{TRIGGERPATH_URI}/CodeSystem/statement"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_NAMESPACE = uuid.UUID("6b3f0c1e-2a4d-5e6f-8a9b-0c1d2e3f4a5b")

VERDICT_DISPLAY: dict[Verdict, str] = {
    "urgent_referral": "Urgent referral (red flag)",
    "not_indicated": "TPI not indicated (other pain generator)",
    "insufficient_findings": "Insufficient findings for a TPI",
    "contraindicated": "TPI contraindicated",
    "conservative_care_first": "Stepped conservative care first",
    "tpi_appropriate": "TPI appropriate within comprehensive care",
}


def knowledge_uri(kb: Knowledge) -> str:
    """The knowledge base version a result rests on, as a module URI."""
    return f"{TRIGGERPATH_URI}/Library/triggerpath-knowledge/{kb.version}"


def stable_id(*parts: object) -> str:
    return str(uuid.uuid5(_NAMESPACE, "|".join(str(p) for p in parts)))


def _dump(model: Resource) -> dict[str, Any]:
    out: dict[str, Any] = model.model_dump(mode="json")
    return out


def _instant(when: datetime, field_name: str) -> str:
    if when.tzinfo is None:
        raise InvalidInput.single(field_name, "needs a timezone")
    return when.isoformat()


def coding(kb: Knowledge, vs_id: str, code: str | None = None) -> dict[str, str]:
    """A Coding from a value set (its first code, or the one given)."""
    for system, c in kb.valuesets.codes(vs_id):
        if code is None or c.code == code:
            return {"system": system.url, "code": c.code, "display": c.display}
    raise KeyError(f"code {code!r} is not in value set {vs_id!r}")


def _patient(patient_id: str) -> dict[str, str]:
    if not patient_id or "/" in patient_id:
        raise InvalidInput.single("patient_id", "expected a FHIR Patient id (no 'Type/')")
    return {"reference": f"Patient/{patient_id}"}


def _citations(kb: Knowledge, statement_ids: Iterable[str]) -> list[dict[str, Any]]:
    out = []
    for sid in dict.fromkeys(statement_ids):
        st = kb.statements.get(sid)
        art: dict[str, Any] = {"type": "citation", "label": sid}
        if st is not None:
            art["display"] = st.topic
            art["citation"] = st.summary
        out.append(art)
    return out


def _ids_text(statement_ids: Iterable[str]) -> str:
    ids = list(dict.fromkeys(statement_ids))
    return f" [{', '.join(ids)}]" if ids else ""


# --------------------------------------------------------------------------- recommendation
def recommendation_resources(
    rec: Recommendation,
    kb: Knowledge,
    *,
    patient_id: str,
    now: datetime,
    request_id: str | None = None,
) -> list[dict[str, Any]]:
    """The recommendation as ``[RequestGroup, GuidanceResponse]`` (linked by ``result``)."""
    when = _instant(now, "now")
    subject = _patient(patient_id)
    base = stable_id("recommendation", patient_id, when, rec.verdict, request_id or "")
    rg_id, gr_id = stable_id(base, "RequestGroup"), stable_id(base, "GuidanceResponse")
    verdict = {
        "coding": [
            {"system": VERDICT_SYSTEM, "code": rec.verdict, "display": VERDICT_DISPLAY[rec.verdict]}
        ],
        "text": rec.headline,
    }
    actions: list[dict[str, Any]] = []
    nxt = rec.stepped_care.next_step
    if rec.redirect is not None:
        redirect = next(r for r in kb.pathway.redirects if r.code == rec.redirect)
        actions.append(
            {
                "title": redirect.name,
                "description": redirect.description.strip(),
                "code": [{"coding": [{"system": VERDICT_SYSTEM, "code": redirect.code}]}],
                "documentation": _citations(kb, redirect.statement_ids),
                "priority": "routine",
            }
        )
    elif rec.verdict != "urgent_referral":
        actions.append(
            {
                "title": f"Step {nxt.stage}: {nxt.name}",
                "description": nxt.text,
                "documentation": _citations(kb, nxt.statement_ids),
            }
        )
    for r in rec.reasons if rec.verdict == "urgent_referral" else []:
        actions.append(
            {
                "title": "Urgent work-up",
                "description": r.text,
                "priority": "urgent",
                "documentation": _citations(kb, r.statement_ids),
            }
        )
    for c in rec.cautions:
        actions.append(
            {
                "title": c.text[:250],
                "description": c.action,
                "code": [{"coding": [{"system": CAUTION_SYSTEM, "code": c.code}]}],
                "documentation": _citations(kb, c.statement_ids),
            }
        )
    for item in rec.before_procedure:
        actions.append(
            {
                "title": item.title,
                "description": item.text,
                "documentation": _citations(kb, item.statement_ids),
            }
        )
    for need in rec.needs:
        if need.blocking:
            actions.append({"title": f"Record {need.field}", "description": f"Needed: {need.why}"})
    group: dict[str, Any] = {
        "resourceType": "RequestGroup",
        "id": rg_id,
        "status": "active",
        "intent": "proposal",
        "subject": subject,
        "authoredOn": when,
        "instantiatesUri": [knowledge_uri(kb)],
        "reasonCode": [verdict],
        "note": [{"text": rec.disclaimer}],
    }
    if actions:
        group["action"] = actions
    reasons = "\n".join(
        f"- {r.text}{_ids_text(r.statement_ids)}" for r in [*rec.reasons, *rec.findings]
    )
    notes = [{"text": f"**{rec.headline}**\n\n{reasons}".strip()}]
    for conflict in rec.conflicts:
        notes.append(
            {
                "text": f"Sources differ ({conflict.topic}): {conflict.range}. "
                + " / ".join(conflict.positions)
            }
        )
    response: dict[str, Any] = {
        "resourceType": "GuidanceResponse",
        "id": gr_id,
        "moduleUri": knowledge_uri(kb),
        "status": "success",
        "subject": subject,
        "occurrenceDateTime": when,
        "reasonCode": [verdict],
        "note": notes,
        "result": {"reference": f"RequestGroup/{rg_id}"},
    }
    if request_id:
        response["requestIdentifier"] = {"system": "urn:ietf:rfc:3986", "value": request_id}
    return [
        _dump(RequestGroup.model_validate(group)),
        _dump(GuidanceResponse.model_validate(response)),
    ]


def care_plan(
    rec: Recommendation,
    kb: Knowledge,
    *,
    patient_id: str,
    now: datetime,
    resource_id: str | None = None,
) -> dict[str, Any]:
    """The comprehensive plan around the verdict (next step, care items, follow-up)."""
    when = _instant(now, "now")
    nxt = rec.stepped_care.next_step
    activities: list[dict[str, Any]] = [
        {
            "detail": {
                "status": "not-started",
                "description": f"Step {nxt.stage} ({nxt.name}): {nxt.text}"
                + _ids_text(nxt.statement_ids),
            }
        }
    ]
    for item in [*rec.comprehensive_care, *rec.follow_up]:
        detail: dict[str, Any] = {
            "status": "not-started",
            "description": f"{item.title}: {item.text}{_ids_text(item.statement_ids)}",
        }
        if item.code == "physical_therapy":
            detail["kind"] = "ServiceRequest"
            detail["code"] = {"coding": [coding(kb, "physical_therapy")]}
        activities.append({"detail": detail})
    plan = {
        "resourceType": "CarePlan",
        "id": resource_id or stable_id("careplan", patient_id, when, rec.verdict),
        "status": "active"
        if rec.verdict in ("tpi_appropriate", "conservative_care_first")
        else "draft",
        "intent": "plan",
        "title": f"Back pain plan: {VERDICT_DISPLAY[rec.verdict]}",
        "description": rec.headline,
        "subject": _patient(patient_id),
        "created": when,
        "instantiatesUri": [knowledge_uri(kb)],
        "activity": activities,
        "note": [{"text": rec.disclaimer}],
    }
    return _dump(CarePlan.model_validate(plan))


# --------------------------------------------------------------------------- session records
Side = Literal["left", "right", "bilateral"]


@dataclass(frozen=True)
class InjectionSite:
    muscle: str  # muscle id of the knowledge base
    side: Side


@dataclass(frozen=True)
class TpiSession:
    """What was done in one TPI session (the input of the session writers)."""

    patient_id: str
    performed_at: datetime
    sites: Sequence[InjectionSite]
    agent: str | None = None  # local anesthetic id (lidocaine …); None with dry needling
    percent: Decimal | None = None
    total_ml: Decimal | None = None
    epinephrine: bool = False
    performer: str | None = None  # "Practitioner/123"
    encounter: str | None = None  # "Encounter/456"
    note: str | None = None
    statement_ids: Sequence[str] = field(default_factory=lambda: ["S003.07", "S002.32"])

    @property
    def muscle_count(self) -> int:
        """Muscles injected as CPT counts them (a bilateral muscle counts twice)."""
        return sum(2 if s.side == "bilateral" else 1 for s in dict.fromkeys(self.sites))

    @property
    def mg(self) -> Decimal | None:
        if self.percent is None or self.total_ml is None:
            return None
        return self.percent * 10 * self.total_ml  # 1% = 10 mg/mL

    def check(self, kb: Knowledge) -> None:
        problems: list[FieldProblem] = []
        if not self.sites:
            problems.append(FieldProblem("sites", "at least one injected muscle"))
        for i, s in enumerate(self.sites):
            if s.muscle not in kb.muscles:
                problems.append(FieldProblem(f"sites[{i}].muscle", f"unknown muscle {s.muscle!r}"))
        if self.agent is not None and kb.injectates.agent(self.agent) is None:
            problems.append(FieldProblem("agent", f"unknown local anesthetic {self.agent!r}"))
        if self.agent is not None and (self.percent is None or self.total_ml is None):
            problems.append(FieldProblem("agent", "give percent and total_ml with the agent"))
        for name in ("percent", "total_ml"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                problems.append(FieldProblem(name, "must be positive"))
        if problems:
            raise InvalidInput(problems)


def _session_id(s: TpiSession, kind: str) -> str:
    return stable_id(kind, s.patient_id, _instant(s.performed_at, "performed_at"))


def tpi_procedure(session: TpiSession, kb: Knowledge) -> dict[str, Any]:
    """The TPI as a Procedure: CPT 20552 (1-2 muscles) or 20553 (3 or more)."""
    session.check(kb)
    cpt = "20552" if session.muscle_count <= 2 else "20553"
    sites = [
        {"text": f"{kb.muscles[s.muscle].name}, {s.side}"} for s in dict.fromkeys(session.sites)
    ]
    proc: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": _session_id(session, "Procedure"),
        "status": "completed",
        "code": {"coding": [coding(kb, "tpi_procedure", cpt)], "text": "Trigger point injection"},
        "subject": _patient(session.patient_id),
        "performedDateTime": _instant(session.performed_at, "performed_at"),
        "bodySite": sites,
        "instantiatesUri": [knowledge_uri(kb)],
        "note": [
            {
                "text": (session.note + " " if session.note else "")
                + ("Dry needling (no injectate)." if session.agent is None else "")
                + _ids_text(session.statement_ids)
            }
        ],
    }
    if session.performer:
        proc["performer"] = [{"actor": {"reference": session.performer}}]
    if session.encounter:
        proc["encounter"] = {"reference": session.encounter}
    return _dump(Procedure.model_validate(proc))


def anesthetic_administration(session: TpiSession, kb: Knowledge) -> dict[str, Any]:
    """The local anesthetic given in the session (mg = % x 10 x mL), part of the Procedure."""
    session.check(kb)
    la = kb.injectates.agent(session.agent or "")
    if la is None or session.mg is None or session.percent is None or session.total_ml is None:
        raise InvalidInput.single("agent", "no local anesthetic in this session (dry needling)")
    codes = [
        {"system": system.url, "code": c.code, "display": c.display}
        for system, c in kb.valuesets.codes("local_anesthetic")
        if system.id == "rxnorm" and c.display.lower().startswith(la.id)
    ]
    pct = format(session.percent.normalize(), "f")
    ml = format(session.total_ml.normalize(), "f")
    text = f"{la.name} {pct}%{' with epinephrine' if session.epinephrine else ''}, {ml} mL"
    admin: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "id": _session_id(session, "MedicationAdministration"),
        "status": "completed",
        "medicationCodeableConcept": {"coding": codes, "text": text} if codes else {"text": text},
        "subject": _patient(session.patient_id),
        "effectiveDateTime": _instant(session.performed_at, "performed_at"),
        "partOf": [{"reference": f"Procedure/{_session_id(session, 'Procedure')}"}],
        "dosage": {
            "text": f"{text} into trigger points ({format(session.mg.normalize(), 'f')} mg)",
            "route": {"coding": [coding(kb, "intramuscular_route")]},
            "dose": {"value": float(session.mg), "unit": "mg", "system": UCUM, "code": "mg"},
        },
    }
    if session.encounter:
        admin["context"] = {"reference": session.encounter}
    if session.performer:
        admin["performer"] = [{"actor": {"reference": session.performer}}]
    return _dump(MedicationAdministration.model_validate(admin))


def pain_observation(
    patient_id: str,
    nrs: int,
    when: datetime,
    kb: Knowledge,
    *,
    part_of: str | None = None,
    resource_id: str | None = None,
) -> dict[str, Any]:
    """A 0-10 pain score (LOINC 72514-3), optionally part of a Procedure."""
    if isinstance(nrs, bool) or not 0 <= nrs <= 10:
        raise InvalidInput.single("nrs", "pain score must be an integer 0-10")
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": resource_id or stable_id("pain", patient_id, _instant(when, "when"), nrs),
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey"}]}],
        "code": {"coding": [coding(kb, "pain_severity")]},
        "subject": _patient(patient_id),
        "effectiveDateTime": _instant(when, "when"),
        "valueQuantity": {"value": nrs, "unit": "{score}", "system": UCUM, "code": "{score}"},
    }
    if part_of:
        obs["partOf"] = [{"reference": part_of}]
    return _dump(Observation.model_validate(obs))


def weight_observation(
    patient_id: str, kg: Decimal, when: datetime, kb: Knowledge
) -> dict[str, Any]:
    """A body weight (LOINC 29463-7) in kg."""
    if not Decimal(0) < kg <= Decimal(400):
        raise InvalidInput.single("kg", "weight must be above 0 and at most 400 kg")
    obs = {
        "resourceType": "Observation",
        "id": stable_id("weight", patient_id, _instant(when, "when"), kg),
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs"}]}],
        "code": {"coding": [coding(kb, "body_weight", "29463-7")]},
        "subject": _patient(patient_id),
        "effectiveDateTime": _instant(when, "when"),
        "valueQuantity": {"value": float(kg), "unit": "kg", "system": UCUM, "code": "kg"},
    }
    return _dump(Observation.model_validate(obs))


def referral_request(
    kb: Knowledge,
    vs_id: str,
    *,
    patient_id: str,
    now: datetime,
    reason: str,
    statement_ids: Sequence[str],
    status: Literal["draft", "active"] = "draft",
    resource_id: str | None = None,
    code: str | None = None,
    coded: bool = True,
    validate: bool = True,
) -> dict[str, Any]:
    """A referral ServiceRequest coded from a value set (physical_therapy, …).

    ``code`` picks one code of the value set (default: its first); ``coded=False``
    writes the name only, when no code of the set fits (never a guessed code).
    ``validate=False`` skips the model check on the CDS hot path (the same shape is
    validated against the FHIR R4 schema by the tests).
    """
    vs = kb.valuesets.get(vs_id)
    concept: dict[str, Any] = {"text": vs.name}
    if coded:
        concept["coding"] = [coding(kb, vs_id, code)]
    req = {
        "resourceType": "ServiceRequest",
        "id": resource_id or stable_id("referral", vs_id, patient_id, _instant(now, "now")),
        "status": status,
        "intent": "proposal",
        "category": [{"coding": [coding(kb, "referral")]}],
        "code": concept,
        "subject": _patient(patient_id),
        "authoredOn": _instant(now, "now"),
        "reasonCode": [{"text": reason[:1000]}],
        "instantiatesUri": [knowledge_uri(kb)],
        "note": [{"text": f"Suggested by TriggerPath{_ids_text(statement_ids)}"}],
    }
    return _dump(ServiceRequest.model_validate(req)) if validate else req


# --------------------------------------------------------------------------- bundles
def _rewrite(node: Any, refs: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "reference" and isinstance(v, str) and v in refs:
                out[k] = refs[v]
            else:
                out[k] = _rewrite(v, refs)
        return out
    if isinstance(node, list):
        return [_rewrite(v, refs) for v in node]
    return node


def transaction_bundle(resources: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A transaction Bundle creating the resources; references between them use urn:uuid."""
    refs = {f"{r['resourceType']}/{r['id']}": f"urn:uuid:{r['id']}" for r in resources}
    entries = [
        {
            "fullUrl": f"urn:uuid:{r['id']}",
            "resource": _rewrite(dict(r), refs),
            "request": {"method": "POST", "url": r["resourceType"]},
        }
        for r in resources
    ]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    return _dump(Bundle.model_validate(bundle))


__all__ = [
    "FHIR_VERSION",
    "InjectionSite",
    "TpiSession",
    "anesthetic_administration",
    "care_plan",
    "coding",
    "knowledge_uri",
    "pain_observation",
    "recommendation_resources",
    "referral_request",
    "tpi_procedure",
    "transaction_bundle",
    "weight_observation",
]
