"""CDS Hooks 2.0 cards from a patient's record, draft orders and the engine's result.

Pure: the record comes in as a :class:`~triggerpath.adapters.fhir_r4.read.PatientSnapshot`,
the draft orders as plain FHIR R4 dicts, time as ``snapshot.now``. The engine
decides (:func:`triggerpath.domain.engine.assess` on the snapshot's partial
assessment) and the cards only render its ``Recommendation``: verdict, reasons,
cautions and needs keep their statement ids. Doses are checked by
:func:`triggerpath.domain.dosing.check_dose`.

Hooks:

- ``patient-view``: TPI status (eligible or not and why, what the record lacks),
  course status and reassessment due, local anesthetic given in the last 24 h,
  and one card per contraindication or bleeding-risk caution.
- ``order-select`` / ``order-sign``: for TPI orders in ``draftOrders`` (a
  ServiceRequest coded CPT 20552/20553, or a local-anesthetic MedicationRequest
  that is not topical), cards for red flags, contraindications (pregnancy,
  allergy, infection, bleeding disorder), bleeding-risk drugs, non-myofascial
  diagnoses (radiculopathy -> epidural steroid injection referral), course limits,
  the dose check, and physical therapy alongside (S000.25). Every card names the
  draft orders it concerns.

Every card has a deterministic ``uuid`` (hook instance + card code), a summary
under 140 characters, ``source`` naming TriggerPath and the knowledge version,
override reasons, a link to the TriggerPath web view, and an evaluation trace in
``extension["org.triggerpath.trace"]``: rule, verdict, statement ids, the EHR
records behind it and what was missing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from triggerpath.adapters.fhir_r4.read import (
    Evidence,
    PatientSnapshot,
    bundle_resources,
)
from triggerpath.adapters.fhir_r4.write import referral_request
from triggerpath.domain.dosing import DoseCheck, DoseRequest, PriorDose, SolutionDose, check_dose
from triggerpath.domain.engine import assess
from triggerpath.domain.policy import DEFAULT_POLICY, Policy
from triggerpath.domain.recommendation import Reason, Recommendation
from triggerpath.domain.validation import parse_assessment
from triggerpath.errors import InvalidInput
from triggerpath.knowledge.loader import Knowledge

Hook = Literal["patient-view", "order-select", "order-sign"]
HOOKS: tuple[Hook, ...] = ("patient-view", "order-select", "order-sign")
Indicator = Literal["info", "warning", "critical"]

TRIGGERPATH_URI = "https://triggerpath.example/fhir"
TOPIC_SYSTEM = f"{TRIGGERPATH_URI}/CodeSystem/cds-card"
OVERRIDE_SYSTEM = f"{TRIGGERPATH_URI}/CodeSystem/cds-override-reason"
TRACE_KEY = "org.triggerpath.trace"
ORDERS_KEY = "org.triggerpath.draft-orders"
SUMMARY_MAX = 139  # the spec: under 140 characters
_CARD_NS = uuid.UUID("0f7d2c52-8f1e-5b8a-9c3d-2e4f6a8b0c1d")

#: Reasons a clinician may give when overriding a card (CDS Hooks ``overrideReasons``).
OVERRIDE_REASONS: tuple[tuple[str, str], ...] = (
    ("benefit-outweighs-risk", "Benefit outweighs the risk; proceeding with precautions"),
    ("already-addressed", "Already addressed (e.g. prescriber agreed, INR checked)"),
    ("record-out-of-date", "The EHR record is wrong or out of date"),
    ("patient-informed-choice", "Discussed with the patient, who chose to proceed"),
)
#: CPT codes of the epidural_steroid_injection value set by spinal level (interlaminar, imaging).
ESI_LUMBAR, ESI_CERVICAL_THORACIC = "62323", "62321"
OVERRIDE_CODINGS: tuple[dict[str, str], ...] = tuple(
    {"system": OVERRIDE_SYSTEM, "code": c, "display": d} for c, d in OVERRIDE_REASONS
)
BLEEDING_CAUTIONS = frozenset({"anticoagulant", "antiplatelet"})
OTHER_SAFETY_CAUTIONS = frozenset({"latex_allergy", "preservative_allergy"})
TOPICAL = re.compile(
    r"\b(topical|patch|cream|ointment|gel|jelly|viscous|oral|spray|transdermal|lozenge|"
    r"ophthalmic|solution for inhalation)\b",
    re.IGNORECASE,
)
TOPICAL_ROUTES = frozenset({"6064005", "26643006", "45890007", "37161004", "54485002"})
PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
MG_PER_ML = re.compile(r"(\d+(?:\.\d+)?)\s*MG/ML", re.IGNORECASE)
DOSE_INDICATOR: dict[str, Indicator] = {"ok": "info", "caution": "warning", "exceeds": "critical"}
ML_UNITS = frozenset({"ml", "milliliter", "millilitre"})
EPINEPHRINE = re.compile(r"\b(epinephrine|epinephrin|adrenaline|epi)\b", re.IGNORECASE)


# --------------------------------------------------------------------------- card model
class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Coding(_M):
    system: str
    code: str
    display: str
    version: str | None = None


class Source(_M):
    label: str
    url: str | None = None
    topic: Coding | None = None


class Link(_M):
    label: str
    url: str
    type: Literal["absolute", "smart"] = "absolute"


class Action(_M):
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None
    resourceId: str | None = None  # noqa: N815 - CDS Hooks field name


class Suggestion(_M):
    label: str
    uuid: str
    isRecommended: bool | None = None  # noqa: N815 - CDS Hooks field name
    actions: list[Action] = Field(min_length=1)


class Card(_M):
    uuid: str
    summary: str = Field(min_length=1, max_length=SUMMARY_MAX)
    detail: str | None = None
    indicator: Indicator
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None  # noqa: N815
    overrideReasons: list[Coding] | None = None  # noqa: N815
    links: list[Link] | None = None
    extension: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = self.model_dump(mode="json", exclude_none=True)
        return out


# --------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class CdsOptions:
    """Where the cards point: the TriggerPath web view (absolute base URL)."""

    web_base_url: str = ""
    source_url: str | None = None

    def patient_url(self, patient_id: str | None) -> str | None:
        if not patient_id or not self.web_base_url:
            return None
        return f"{self.web_base_url.rstrip('/')}/patients/{patient_id}"


@dataclass(frozen=True)
class TpiOrder:
    """A draft order that means a TPI: a CPT 20552/20553 ServiceRequest or an anesthetic."""

    reference: str
    kind: Literal["procedure", "anesthetic"]
    resource: Mapping[str, Any]
    text: str
    code: str | None = None


@dataclass
class Evaluation:
    """The answer to one hook call: the cards and the engine result they render."""

    hook: str
    cards: list[dict[str, Any]] = field(default_factory=list)
    recommendation: Recommendation | None = None
    dose: DoseCheck | None = None
    orders: list[TpiOrder] = field(default_factory=list)

    def response(self) -> dict[str, Any]:
        return {"cards": self.cards}


# --------------------------------------------------------------------------- helpers
def _summary(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1].rstrip() + "…"


def _ids(ids: Iterable[str]) -> str:
    unique = list(dict.fromkeys(ids))
    return f" ({', '.join(unique)})" if unique else ""


def _evidence_json(evidence: Iterable[Evidence]) -> list[dict[str, str]]:
    out = []
    for e in evidence:
        item = {
            "reference": e.reference,
            "code": e.code,
            "display": e.display,
            "valueset": e.valueset,
        }
        if e.when:
            item["when"] = e.when
        out.append(item)
    return out


def _codings(concept: Any) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    return (
        [c for c in concept.get("coding", []) if isinstance(c, dict)]
        if isinstance(concept.get("coding"), list)
        else []
    )


def _text(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    if isinstance(concept.get("text"), str):
        return str(concept["text"])
    for c in _codings(concept):
        if isinstance(c.get("display"), str):
            return str(c["display"])
    return ""


def _concept_matches(kb: Knowledge, concept: Any) -> tuple[tuple[str, ...], str | None]:
    for c in _codings(concept):
        code, system = c.get("code"), c.get("system")
        if isinstance(code, str) and isinstance(system, str):
            hits = kb.valuesets.match(system, code)
            if hits:
                return hits, f"{kb.valuesets.system_id(system)} {code}"
    return kb.valuesets.match_text(_text(concept)), None


def _is_topical(resource: Mapping[str, Any], text: str) -> bool:
    if TOPICAL.search(text):
        return True
    for d in resource.get("dosageInstruction") or []:
        if not isinstance(d, dict):
            continue
        if TOPICAL.search(str(d.get("text") or "")):
            return True
        if any(c.get("code") in TOPICAL_ROUTES for c in _codings(d.get("route"))):
            return True
        if TOPICAL.search(_text(d.get("route"))):
            return True
    return False


def tpi_orders(
    draft_orders: Any,
    kb: Knowledge,
    *,
    selections: Sequence[str] | None = None,
) -> list[TpiOrder]:
    """The draft orders that are TPIs (``selections`` limits them for order-select)."""
    resources = bundle_resources(draft_orders, "context.draftOrders")
    chosen = set(selections) if selections else None
    out: list[TpiOrder] = []
    for r in resources:
        kind = r.get("resourceType")
        ref = f"{kind}/{r.get('id') or '?'}"
        if chosen is not None and ref not in chosen:
            continue
        if r.get("status") in ("entered-in-error", "revoked", "cancelled", "completed"):
            continue
        if kind == "ServiceRequest":
            hits, code = _concept_matches(kb, r.get("code"))
            if "tpi_procedure" in hits:
                out.append(TpiOrder(ref, "procedure", r, _text(r.get("code")) or "TPI", code))
        elif kind == "MedicationRequest":
            concept = r.get("medicationCodeableConcept")
            hits, code = _concept_matches(kb, concept)
            text = _text(concept)
            if "local_anesthetic" in hits and not _is_topical(r, text):
                out.append(TpiOrder(ref, "anesthetic", r, text or "local anesthetic", code))
    return out


def _card_uuid(hook_instance: str, code: str, orders: Sequence[TpiOrder]) -> str:
    return str(
        uuid.uuid5(_CARD_NS, "|".join([hook_instance, code, *(o.reference for o in orders)]))
    )


# --------------------------------------------------------------------------- the builder
class _Cards:
    def __init__(
        self,
        hook: str,
        hook_instance: str,
        snap: PatientSnapshot,
        kb: Knowledge,
        options: CdsOptions,
        orders: Sequence[TpiOrder],
        regions_screened_all: bool,
    ) -> None:
        self.hook = hook
        self.hook_instance = hook_instance
        self.snap = snap
        self.kb = kb
        self.options = options
        self.orders = list(orders)
        self.regions_screened_all = regions_screened_all
        self.cards: list[dict[str, Any]] = []

    def add(
        self,
        code: str,
        title: str,
        summary: str,
        indicator: Indicator,
        detail_lines: Sequence[str],
        statement_ids: Sequence[str],
        *,
        rule: str,
        verdict: str | None = None,
        evidence: Iterable[Evidence] = (),
        inputs: Sequence[str] = (),
        suggestions: Sequence[tuple[str, Sequence[Action], bool]] = (),
        extra_trace: Mapping[str, Any] | None = None,
    ) -> None:
        card_id = _card_uuid(self.hook_instance, code, self.orders)
        kb = self.kb
        ids = list(dict.fromkeys(statement_ids))
        lines = [line for line in detail_lines if line]
        if self.orders:
            lines.append(
                "Draft order(s): " + ", ".join(f"{o.text} ({o.reference})" for o in self.orders)
            )
        lines.append(
            f"Sources: {', '.join(ids) or 'none'} · TriggerPath knowledge {kb.version}. "
            "Decision support for the treating clinician, who decides."
        )
        trace: dict[str, Any] = {
            "rule": rule,
            "hook": self.hook,
            "hookInstance": self.hook_instance,
            "knowledgeVersion": kb.version,
            "asOf": self.snap.as_of.isoformat(),
            "statementIds": ids,
            "evidence": _evidence_json(evidence),
            "inputs": list(inputs),
            "missing": [f"{m.field}: {m.why}" for m in self.snap.missing],
        }
        if verdict:
            trace["verdict"] = verdict
        if self.regions_screened_all:
            trace["regionsScreened"] = "all (the record codes no pain site)"
        if extra_trace:
            trace.update(extra_trace)
        extension: dict[str, Any] = {TRACE_KEY: trace}
        if self.orders:
            extension[ORDERS_KEY] = [o.reference for o in self.orders]
        links = []
        url = self.options.patient_url(self.snap.patient_id)
        if url:
            links.append(Link(label="Open in TriggerPath", url=url))
        sugg = [
            Suggestion(
                label=label,
                uuid=str(uuid.uuid5(uuid.UUID(card_id), label)),
                isRecommended=recommended or None,
                actions=list(actions),
            )
            for label, actions, recommended in suggestions
        ]
        # built as plain JSON (the hot path); tests check every card against ``Card``
        source: dict[str, Any] = {
            "label": "TriggerPath",
            "topic": {
                "system": TOPIC_SYSTEM,
                "code": code,
                "display": title,
                "version": kb.version,
            },
        }
        if self.options.source_url:
            source["url"] = self.options.source_url
        card: dict[str, Any] = {
            "uuid": card_id,
            "summary": _summary(summary),
            "detail": "\n\n".join(lines),
            "indicator": indicator,
            "source": source,
        }
        if sugg:
            card["suggestions"] = [x.model_dump(mode="json", exclude_none=True) for x in sugg]
            card["selectionBehavior"] = "at-most-one"
        card["overrideReasons"] = [dict(c) for c in OVERRIDE_CODINGS]
        if links:
            card["links"] = [x.model_dump(mode="json") for x in links]
        card["extension"] = extension
        self.cards.append(card)

    # ---- suggestion pieces
    def delete_orders(self) -> list[Action]:
        return [
            Action(
                type="delete",
                description=f"Remove the draft order {o.reference}",
                resourceId=o.reference,
            )
            for o in self.orders
        ]

    def referral(self, vs_id: str, reason: str, statement_ids: Sequence[str]) -> Action:
        pid = self.snap.patient_id or "unknown"
        code, coded = None, True
        if vs_id == "epidural_steroid_injection":  # the level follows the coded pain site
            regions = set(self.snap.regions)
            if regions & {"low_back", "pelvic_girdle"} and not regions - {
                "low_back",
                "pelvic_girdle",
            }:
                code = ESI_LUMBAR
            elif regions and not regions & {"low_back", "pelvic_girdle"}:
                code = ESI_CERVICAL_THORACIC
            else:
                coded = False
        resource = referral_request(
            self.kb,
            vs_id,
            patient_id=pid,
            now=self.snap.now,
            reason=reason,
            statement_ids=statement_ids,
            resource_id=str(uuid.uuid5(_CARD_NS, f"{self.hook_instance}|{vs_id}")),
            code=code,
            coded=coded,
            validate=False,
        )
        return Action(
            type="create",
            description=f"Create a referral: {self.kb.valuesets.get(vs_id).name}",
            resource=resource,
        )


# --------------------------------------------------------------------------- engine
def _assess(
    snap: PatientSnapshot, kb: Knowledge, policy: Policy
) -> tuple[Recommendation | None, bool, list[str]]:
    """Run the engine on the record's partial assessment: (result, all regions?, problems)."""
    all_regions = not snap.regions
    try:
        data = snap.assessment_input(screen_all_regions=True)
        assessment = parse_assessment(data, kb)
    except InvalidInput as exc:
        return None, all_regions, [str(p) for p in exc.problems]
    return assess(assessment, kb, as_of=snap.as_of, policy=policy), all_regions, []


def _contraindications(rec: Recommendation) -> list[Reason]:
    seen: dict[str, Reason] = {}
    for r in [*rec.reasons, *rec.findings]:
        if r.code.startswith("contraindication.") and r.code not in seen:
            seen[r.code] = r
    return list(seen.values())


def _evidence_for(snap: PatientSnapshot, fields: Iterable[str]) -> list[Evidence]:
    out: list[Evidence] = []
    for f in fields:
        out.extend(snap.evidence(f))
    return out


def _medication_evidence(snap: PatientSnapshot, drug_class: str) -> list[Evidence]:
    return [
        Evidence(
            m.reference,
            m.code or "text",
            m.name,
            m.valuesets[0] if m.valuesets else "name",
            m.authored,
        )
        for m in snap.active_medications
        if m.drug_class == drug_class
    ]


def _needs_lines(rec: Recommendation, limit: int = 8) -> list[str]:
    blocking = [n for n in rec.needs if n.blocking]
    if not blocking:
        return []
    shown = ", ".join(f"`{n.field}`" for n in blocking[:limit])
    more = f" and {len(blocking) - limit} more" if len(blocking) > limit else ""
    return [f"**Not in the record (never guessed):** {shown}{more}."]


# --------------------------------------------------------------------------- course status
@dataclass(frozen=True)
class CourseStatus:
    count: int
    last: datetime | None
    sessions_min: int
    sessions_max: int
    phase: str | None
    reassess_from: datetime | None
    reassess_by: datetime | None
    statement_ids: tuple[str, ...]
    window_days: int = 365

    @property
    def limit_reached(self) -> bool:
        return self.count >= self.sessions_max

    def lines(self, now: datetime) -> list[str]:
        if self.count == 0 or self.last is None:
            return []
        phase = self.phase or "phase unknown"
        out = [
            f"**Course:** {self.count} TPI session(s) in the last {self.window_days} days, "
            f"the last on {self.last.date().isoformat()}; expected "
            f"{self.sessions_min}-{self.sessions_max} sessions ({phase}){_ids(['S000.20'])}."
        ]
        if self.reassess_from and self.reassess_by:
            if now < self.reassess_from:
                state = "not yet due"
            elif now <= self.reassess_by:
                state = "due now"
            else:
                state = "overdue"
            out.append(
                f"**Reassessment** 2-4 weeks after treatment: "
                f"{self.reassess_from.date().isoformat()} to {self.reassess_by.date().isoformat()}"
                f", {state}{_ids(['S003.12'])}."
            )
        return out


def course_status(
    snap: PatientSnapshot, rec: Recommendation | None, kb: Knowledge, policy: Policy
) -> CourseStatus:
    window = timedelta(days=policy.ehr_course_window_days)
    tpis = [t for t in snap.tpis or [] if t.when is not None and snap.now - t.when <= window]
    last = max((t.when for t in tpis if t.when is not None), default=None)
    phases = {p.id: p for p in kb.pathway.duration_phases}
    phase = rec.expected_course.phase if rec is not None else None
    if phase is not None:
        smin, smax = phases[phase].sessions_min, phases[phase].sessions_max
    else:  # unknown phase: the smallest maximum of the sources' ranges (conservative)
        smin = min(p.sessions_min for p in phases.values())
        smax = min(p.sessions_max for p in phases.values())
    reassess = kb.statements.get("S003.12")
    weeks_min = int(reassess.values.get("reassess_weeks_min", 2)) if reassess else 2
    weeks_max = int(reassess.values.get("reassess_weeks_max", 4)) if reassess else 4
    return CourseStatus(
        count=len(tpis),
        last=last,
        sessions_min=smin,
        sessions_max=smax,
        phase=phase,
        reassess_from=last + timedelta(weeks=weeks_min) if last else None,
        reassess_by=last + timedelta(weeks=weeks_max) if last else None,
        statement_ids=("S000.20", "S003.12"),
        window_days=policy.ehr_course_window_days,
    )


def _recent_anesthetic(snap: PatientSnapshot) -> list[str]:
    lines = []
    for a in snap.administrations_24h:
        dose = f"{a.dose_value} {a.dose_unit}" if a.dose_value is not None else "dose not recorded"
        when = a.when.isoformat(timespec="minutes") if a.when else "time not recorded"
        lines.append(f"{a.name}, {dose}, {when} ({a.reference})")
    day = timedelta(hours=24)
    for t in snap.tpis or []:
        if t.when is not None and timedelta(0) <= snap.now - t.when <= day:
            lines.append(f"TPI {t.code} at {t.when.isoformat(timespec='minutes')} ({t.reference})")
    return lines


# --------------------------------------------------------------------------- dose
def _agent_of(kb: Knowledge, text: str) -> str | None:
    for word in re.split(r"[^a-z]+", text.lower()):
        if word and kb.injectates.agent(word) is not None:
            la = kb.injectates.agent(word)
            return la.id if la else None
    return None


def _percent(text: str) -> Decimal | None:
    m = PERCENT.search(text)
    if m:
        return Decimal(m.group(1))
    m = MG_PER_ML.search(text)
    if m:
        return Decimal(m.group(1)) / 10  # 10 mg/mL = 1%
    return None


def _ml(resource: Mapping[str, Any], percent: Decimal | None) -> Decimal | None:
    """Volume of a local anesthetic order: dose in mL (or mg with a strength), else dispense."""
    for d in resource.get("dosageInstruction") or []:
        if not isinstance(d, dict):
            continue
        for dr in d.get("doseAndRate") or []:
            q = dr.get("doseQuantity") if isinstance(dr, dict) else None
            if isinstance(q, dict) and isinstance(q.get("value"), int | float):
                unit = str(q.get("code") or q.get("unit") or "").lower()
                value = Decimal(str(q["value"]))
                if unit in ML_UNITS:
                    return value
                if unit == "mg" and percent:
                    return value / (percent * 10)
    q = (resource.get("dispenseRequest") or {}).get("quantity")
    unit = str(q.get("code") or q.get("unit") or "").lower() if isinstance(q, dict) else ""
    if isinstance(q, dict) and isinstance(q.get("value"), int | float) and unit in ML_UNITS:
        return Decimal(str(q["value"]))
    return None


def _prior_doses(snap: PatientSnapshot, kb: Knowledge) -> tuple[list[PriorDose], list[str]]:
    prior: list[PriorDose] = []
    unknown: list[str] = []
    for a in snap.administrations_24h:
        agent = _agent_of(kb, a.name)
        unit = (a.dose_unit or "").lower()
        mg: Decimal | None = None
        if a.dose_value is not None and unit == "mg":
            mg = a.dose_value
        elif a.dose_value is not None and unit == "ml":
            pct = _percent(f"{a.name} {a.text or ''}")
            mg = pct * 10 * a.dose_value if pct is not None else None
        if agent is None or mg is None:
            unknown.append(a.reference)
        else:
            prior.append(PriorDose(agent=agent, mg=mg))
    if not snap.administrations_24h:  # a TPI in the last 24 h without a recorded dose
        day = timedelta(hours=24)
        unknown += [
            t.reference
            for t in snap.tpis or []
            if t.when is not None and timedelta(0) <= snap.now - t.when <= day
        ]
    return prior, unknown


def _dose_card(
    b: _Cards, order: TpiOrder, snap: PatientSnapshot, kb: Knowledge, policy: Policy
) -> DoseCheck | None:
    text = order.text
    agent = _agent_of(kb, text)
    percent = _percent(text)
    ml = _ml(order.resource, percent)
    epinephrine = bool(EPINEPHRINE.search(text))
    prior, unknown = _prior_doses(snap, kb)
    missing = []
    if agent is None:
        missing.append("which local anesthetic")
    if percent is None:
        missing.append("the strength (%)")
    if ml is None:
        missing.append("the volume (mL)")
    if snap.weight is None:
        missing.append("a recent body weight")
    ids = ["S000.28", "S000.29"]
    if missing or agent is None or percent is None or ml is None or snap.weight is None:
        b.add(
            "dose-check-incomplete",
            "Dose check",
            f"Dose of {order.text} not checked: missing {', '.join(missing)}",
            "warning",
            [
                "The local anesthetic dose cannot be checked against the weight-based and "
                f"24-hour limits without {', '.join(missing)}; TriggerPath does not guess them.",
                *(f"- {m.field}: {m.why}" for m in snap.missing if m.field == "patient.weight_kg"),
            ],
            ids,
            rule="dose.check_dose",
            inputs=["patient.weight_kg", "draftOrders"],
        )
        return None
    request = DoseRequest(
        weight_kg=snap.weight.value,
        height_cm=snap.height.value if snap.height else None,
        sex="female" if snap.sex == "female" else "male" if snap.sex == "male" else None,
        solutions=[SolutionDose(agent=agent, percent=percent, ml=ml, epinephrine=epinephrine)],
        prior_24h=prior,
    )
    try:
        result = check_dose(request, kb, policy=policy)
    except InvalidInput as exc:
        b.add(
            "dose-check-invalid",
            "Dose check",
            f"Dose of {order.text} could not be checked: see details",
            "warning",
            ["The order could not be checked:", *(f"- {p}" for p in exc.problems)],
            ids,
            rule="dose.check_dose",
            inputs=["draftOrders"],
        )
        return None
    indicator = DOSE_INDICATOR[result.level]
    reason_ids = [s for r in result.reasons for s in r.statement_ids]
    lines = [
        f"**{result.headline}**",
        *(f"- {r.text}{_ids(r.statement_ids)}" for r in result.reasons),
    ]
    if unknown:
        lines.append(
            "Earlier local anesthetic without a usable dose in the last 24 h (not counted): "
            + ", ".join(unknown)
        )
    lines.append(
        f"Weight used: {result.weight.kg} kg ({result.weight.basis}); {result.weight.reason}"
    )
    b.add(
        f"dose-{result.level}",
        "Dose check",
        f"Dose check ({order.text}): {result.headline}",
        indicator,
        lines,
        [*ids, *reason_ids],
        rule="dose.check_dose",
        inputs=["patient.weight_kg", "draftOrders", "MedicationAdministration (24 h)"],
        extra_trace={"doseLevel": result.level, "doseFraction": str(result.fraction)},
    )
    return result


# --------------------------------------------------------------------------- hooks
VERDICT_SUMMARY = {
    "urgent_referral": "Red flag in the record: urgent work-up before any TPI",
    "not_indicated": "TPI not indicated: the pain has another source",
    "insufficient_findings": "TPI not yet supported: the record lacks the examination findings",
    "contraindicated": "TPI contraindicated now",
    "conservative_care_first": "Stepped conservative care comes before TPIs",
    "tpi_appropriate": "TPI may be offered within comprehensive care",
}


def _redirect_name(kb: Knowledge, code: str | None) -> str:
    for r in kb.pathway.redirects:
        if r.code == code:
            return r.name
    return ""


def _safety_cards(b: _Cards, rec: Recommendation, snap: PatientSnapshot, *, ordering: bool) -> None:
    kb = b.kb
    for r in _contraindications(rec):
        cid = r.code.removeprefix("contraindication.")
        item = next((c for c in kb.pathway.contraindications if c.id == cid), None)
        name = item.name if item else cid
        sugg: list[tuple[str, Sequence[Action], bool]] = []
        if ordering:
            sugg.append(("Remove the TPI order", b.delete_orders(), True))
        b.add(
            f"contraindication-{cid}",
            name,
            f"{name}: TPI contraindicated" + (" — reconsider this order" if ordering else ""),
            "critical" if ordering else "warning",
            [f"**{name}.** {r.text}{_ids(r.statement_ids)}"],
            r.statement_ids,
            rule=r.code,
            verdict=rec.verdict,
            evidence=_evidence_for(snap, r.fields),
            inputs=r.fields,
            suggestions=sugg,
        )
    for c in rec.cautions:
        if c.code in BLEEDING_CAUTIONS:
            ev = _medication_evidence(snap, c.code)
            drugs = ", ".join(dict.fromkeys(e.display for e in ev)) or c.code
            b.add(
                f"caution-{c.code}",
                c.text.split(":")[0],
                f"{'Anticoagulant' if c.code == 'anticoagulant' else 'Antiplatelet'} active "
                f"({drugs}): bleeding risk with TPIs",
                "warning",
                [
                    f"{c.text}{_ids(c.statement_ids)}",
                    f"**Do:** {c.action}",
                    *(f"- {e}" for e in ev),
                ],
                c.statement_ids,
                rule=f"caution.{c.code}",
                verdict=rec.verdict,
                evidence=ev,
                inputs=c.fields,
            )
        elif c.code in OTHER_SAFETY_CAUTIONS:
            b.add(
                f"caution-{c.code}",
                c.text.split(":")[0],
                f"{c.text.split(':')[0]}: {c.action}",
                "warning",
                [f"{c.text}{_ids(c.statement_ids)}", f"**Do:** {c.action}"],
                c.statement_ids,
                rule=f"caution.{c.code}",
                verdict=rec.verdict,
                evidence=_evidence_for(snap, c.fields),
                inputs=c.fields,
            )


def _anesthetic_24h_card(b: _Cards, snap: PatientSnapshot) -> None:
    given = _recent_anesthetic(snap)
    if not given:
        return
    b.add(
        "local-anesthetic-24h",
        "Local anesthetic in the last 24 hours",
        "Local anesthetic given in the last 24 h: count it toward today's maximum dose",
        "warning",
        [
            "Local anesthetic doses add up over 24 hours; the 24-hour maximum applies to the total "
            f"(bupivacaine at most 400 mg in 24 h){_ids(['S000.28'])}. Watch for systemic toxicity"
            f"{_ids(['S000.29'])}.",
            *(f"- {g}" for g in given),
        ],
        ["S000.28", "S000.29"],
        rule="local_anesthetic_24h",
        inputs=["MedicationAdministration", "Procedure"],
    )


def _no_assessment_card(b: _Cards, problems: Sequence[str]) -> None:
    b.add(
        "record-incomplete",
        "Record incomplete",
        "TriggerPath could not assess TPI eligibility: the record lacks required data",
        "info",
        ["The record does not give what an assessment needs:", *(f"- {p}" for p in problems)],
        ["S002.32"],
        rule="assessment_input",
    )


def patient_view(
    snap: PatientSnapshot,
    kb: Knowledge,
    *,
    hook_instance: str,
    options: CdsOptions = CdsOptions(),
    policy: Policy = DEFAULT_POLICY,
) -> Evaluation:
    """Cards for opening a chart: nothing unless back/neck pain or TPIs are on record."""
    ev = Evaluation("patient-view")
    if not snap.relevant:
        return ev
    rec, all_regions, problems = _assess(snap, kb, policy)
    b = _Cards("patient-view", hook_instance, snap, kb, options, [], all_regions)
    ev.recommendation = rec
    if rec is None:
        _no_assessment_card(b, problems)
        ev.cards = b.cards
        return ev
    course = course_status(snap, rec, kb, policy)
    indicator: Indicator = (
        "critical"
        if rec.verdict in ("urgent_referral", "contraindicated")
        else "warning"
        if rec.verdict == "not_indicated"
        else "info"
    )
    summary = VERDICT_SUMMARY[rec.verdict]
    if rec.verdict == "not_indicated" and rec.redirect:
        summary = f"TPI not indicated. {_redirect_name(kb, rec.redirect)}"
    lines = [f"**{rec.headline}**"]
    lines += [f"- {r.text}{_ids(r.statement_ids)}" for r in rec.reasons]
    lines += [f"- Also found: {r.text}{_ids(r.statement_ids)}" for r in rec.findings]
    lines += _needs_lines(rec)
    lines += course.lines(snap.now)
    given = _recent_anesthetic(snap)
    if given:
        lines.append(
            f"**Local anesthetic in the last 24 h:** {'; '.join(given)}{_ids(['S000.28'])}."
        )
    if all_regions:
        lines.append("No pain site is coded in the record, so every back region was screened.")
    lines.append(
        "**Pain conditions on record:** "
        + ("; ".join(str(e) for e in snap.pain_conditions) or "none")
    )
    sugg: list[tuple[str, Sequence[Action], bool]] = []
    if rec.redirect == "epidural_steroid_injection":
        sugg.append(
            (
                "Refer for epidural steroid injection evaluation",
                [b.referral("epidural_steroid_injection", rec.headline, ["S000.22", "S004.09"])],
                True,
            )
        )
    ids = [s for r in [*rec.reasons, *rec.findings] for s in r.statement_ids] + ["S000.20"]
    b.add(
        "tpi-status",
        "TPI status",
        summary,
        indicator,
        lines,
        ids,
        rule=f"verdict.{rec.verdict}",
        verdict=rec.verdict,
        evidence=[*snap.pain_conditions, *_evidence_for(snap, snap.findings)],
        inputs=sorted({f for r in rec.reasons for f in r.fields}),
        suggestions=sugg,
        extra_trace={
            "needs": [n.field for n in rec.needs],
            "course": {"sessions": course.count, "limitReached": course.limit_reached},
        },
    )
    _safety_cards(b, rec, snap, ordering=False)
    _anesthetic_24h_card(b, snap)
    ev.cards = b.cards
    return ev


def order_hook(  # noqa: C901  (KNOWN_LONG)
    hook: Literal["order-select", "order-sign"],
    snap: PatientSnapshot,
    draft_orders: Any,
    kb: Knowledge,
    *,
    hook_instance: str,
    selections: Sequence[str] | None = None,
    options: CdsOptions = CdsOptions(),
    policy: Policy = DEFAULT_POLICY,
) -> Evaluation:
    """Cards for TPI draft orders (no cards when no draft order is a TPI)."""
    ev = Evaluation(hook)
    orders = tpi_orders(draft_orders, kb, selections=selections if hook == "order-select" else None)
    ev.orders = orders
    if not orders:
        return ev
    rec, all_regions, problems = _assess(snap, kb, policy)
    ev.recommendation = rec
    b = _Cards(hook, hook_instance, snap, kb, options, orders, all_regions)
    if rec is None:
        _no_assessment_card(b, problems)
        ev.cards = b.cards
        return ev
    if rec.verdict == "urgent_referral":
        b.add(
            "red-flag",
            "Red flag",
            "Red flag in the record: urgent work-up before this TPI",
            "critical",
            [f"- {r.text}{_ids(r.statement_ids)}" for r in rec.reasons],
            [s for r in rec.reasons for s in r.statement_ids],
            rule="verdict.urgent_referral",
            verdict=rec.verdict,
            evidence=_evidence_for(snap, [f for r in rec.reasons for f in r.fields]),
            inputs=[f for r in rec.reasons for f in r.fields],
            suggestions=[("Remove the TPI order", b.delete_orders(), True)],
        )
    generators = [r for r in [*rec.reasons, *rec.findings] if r.code.startswith("pain_generator.")]
    if generators:
        redirect = rec.redirect or (rec.redirects[0] if rec.redirects else None)
        name = _redirect_name(kb, redirect)
        sugg: list[tuple[str, Sequence[Action], bool]] = []
        if redirect == "epidural_steroid_injection":
            sugg.append(
                (
                    "Replace the TPI with an epidural steroid injection referral",
                    [
                        *b.delete_orders(),
                        b.referral(
                            "epidural_steroid_injection",
                            "Radicular pain: TPIs do not treat it",
                            ["S000.22", "S000.33", "S004.09"],
                        ),
                    ],
                    True,
                )
            )
        sugg.append(("Remove the TPI order", b.delete_orders(), False))
        fields = [f for r in generators for f in r.fields]
        b.add(
            "non-myofascial",
            "Pain not primarily muscular",
            f"Not myofascial pain, no TPI. {name or 'Evaluate the other pain source'}",
            "warning",
            [f"- {r.text}{_ids(r.statement_ids)}" for r in generators] + [f"**Redirect:** {name}"],
            [s for r in generators for s in r.statement_ids],
            rule="pain_generator",
            verdict=rec.verdict,
            evidence=_evidence_for(snap, fields),
            inputs=fields,
            suggestions=sugg,
        )
    _safety_cards(b, rec, snap, ordering=True)
    _anesthetic_24h_card(b, snap)
    course = course_status(snap, rec, kb, policy)
    if course.limit_reached:
        b.add(
            "course-limit",
            "Course limit",
            f"{course.count} TPI sessions in {policy.ehr_course_window_days} days: reassess "
            "before more "
            f"(expected {course.sessions_min}-{course.sessions_max})",
            "warning",
            [
                *course.lines(snap.now),
                "Little or short-lived relief after a full course calls for re-evaluation of the "
                f"diagnosis and perpetuating factors{_ids(['S000.31', 'S004.05', 'S003.12'])}.",
            ],
            ["S000.20", "S003.12", "S000.31", "S004.05"],
            rule="course.sessions",
            evidence=[
                Evidence(
                    t.reference,
                    t.code,
                    t.display,
                    "tpi_procedure",
                    t.when.date().isoformat() if t.when else None,
                )
                for t in snap.tpis or []
            ],
            inputs=["Procedure (CPT 20552/20553)"],
        )
    if rec.verdict in ("insufficient_findings", "conservative_care_first"):
        b.add(
            "document-findings",
            "Document the examination",
            "Before this TPI: document the trigger point examination and screens",
            "info",
            [
                f"**{rec.headline}** The EHR record alone cannot show the trigger point criteria "
                "(taut band, tender spot, recognised or referred pain)"
                f"{_ids(['S000.09', 'S000.10', 'S002.10'])}.",
                *_needs_lines(rec),
            ],
            ["S000.09", "S000.10", "S002.10", "S002.32"],
            rule=f"verdict.{rec.verdict}",
            verdict=rec.verdict,
            inputs=[n.field for n in rec.needs if n.blocking],
        )
    for order in orders:
        if order.kind == "anesthetic":
            ev.dose = _dose_card(b, order, snap, kb, policy) or ev.dose
    has_pt = any(e.valueset == "physical_therapy" for e in snap.service_requests) or any(
        "physical_therapy" in _concept_matches(kb, r.get("code"))[0]
        for r in bundle_resources(draft_orders, "context.draftOrders")
        if r.get("resourceType") == "ServiceRequest"
    )
    if not has_pt and rec.verdict not in ("urgent_referral", "not_indicated"):
        b.add(
            "comprehensive-care",
            "Comprehensive care",
            "TPIs belong with physical therapy: add a physical therapy referral",
            "info",
            [
                "TPIs give temporary relief and are used only within a plan with physical "
                f"therapy, education and home exercise{_ids(['S000.25', 'S000.26', 'S000.01'])}. "
                "No physical therapy referral is on record or among the draft orders.",
            ],
            ["S000.25", "S000.26", "S000.01"],
            rule="comprehensive_care.physical_therapy",
            verdict=rec.verdict,
            suggestions=[
                (
                    "Add a physical therapy referral",
                    [
                        b.referral(
                            "physical_therapy",
                            "Myofascial back pain: active care alongside trigger point injections",
                            ["S000.25", "S002.27"],
                        )
                    ],
                    True,
                )
            ],
        )
    ev.cards = b.cards
    return ev


def source_unavailable(
    hook: str,
    hook_instance: str,
    *,
    why: str,
    knowledge_version: str,
    patient_id: str | None = None,
    options: CdsOptions = CdsOptions(),
) -> dict[str, Any]:
    """The card for a record that could not be read in time: explains, never hangs."""
    card_id = str(uuid.uuid5(_CARD_NS, f"{hook_instance}|source-unavailable"))
    links = []
    url = options.patient_url(patient_id)
    if url:
        links.append(Link(label="Open in TriggerPath", url=url))
    return Card(
        uuid=card_id,
        summary="TriggerPath could not read the record in time: no TPI checks were made",
        detail=(
            f"{why}\n\nNo contraindication, medication or dose check ran for this "
            "patient. Check them yourself before any TPI (S002.32), or try again.\n\n"
            f"Sources: S002.32 · TriggerPath knowledge {knowledge_version}."
        ),
        indicator="warning",
        source=Source(
            label="TriggerPath",
            topic=Coding(
                system=TOPIC_SYSTEM,
                code="source-unavailable",
                display="Record unavailable",
                version=knowledge_version,
            ),
        ),
        links=links or None,
        extension={
            TRACE_KEY: {
                "rule": "fhir_server.timeout",
                "hook": hook,
                "hookInstance": hook_instance,
                "knowledgeVersion": knowledge_version,
                "statementIds": ["S002.32"],
                "why": why,
            }
        },
    ).as_json()


__all__ = [
    "HOOKS",
    "ORDERS_KEY",
    "OVERRIDE_REASONS",
    "TRACE_KEY",
    "Card",
    "CdsOptions",
    "CourseStatus",
    "Evaluation",
    "TpiOrder",
    "course_status",
    "order_hook",
    "patient_view",
    "source_unavailable",
    "tpi_orders",
]
