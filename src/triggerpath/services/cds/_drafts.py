"""Which draft orders are TPIs: a CPT 20552/20553 ServiceRequest or an injected anesthetic."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from triggerpath.domain.dosing import DoseCheck
from triggerpath.domain.recommendation import Recommendation
from triggerpath.knowledge.loader import Knowledge
from triggerpath.services.cds._ports import Fhir

TOPICAL = re.compile(
    r"\b(topical|patch|cream|ointment|gel|jelly|viscous|oral|spray|transdermal|lozenge|"
    r"ophthalmic|solution for inhalation)\b",
    re.IGNORECASE,
)
TOPICAL_ROUTES = frozenset({"6064005", "26643006", "45890007", "37161004", "54485002"})
CLOSED_STATUSES = frozenset({"entered-in-error", "revoked", "cancelled", "completed"})


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
        """The CDS Hooks response body."""
        return {"cards": self.cards}


def codings(concept: Any) -> list[dict[str, Any]]:
    """The codings of a CodeableConcept (none when it is malformed)."""
    if not isinstance(concept, dict) or not isinstance(concept.get("coding"), list):
        return []
    return [c for c in concept["coding"] if isinstance(c, dict)]


def concept_text(concept: Any) -> str:
    """A CodeableConcept's text, else its first display."""
    if not isinstance(concept, dict):
        return ""
    if isinstance(concept.get("text"), str):
        return str(concept["text"])
    for c in codings(concept):
        if isinstance(c.get("display"), str):
            return str(c["display"])
    return ""


def concept_matches(kb: Knowledge, concept: Any) -> tuple[tuple[str, ...], str | None]:
    """The value sets a concept is in (by code first, else by text) and the code that hit."""
    for c in codings(concept):
        code, system = c.get("code"), c.get("system")
        if isinstance(code, str) and isinstance(system, str):
            hits = kb.valuesets.match(system, code)
            if hits:
                return hits, f"{kb.valuesets.system_id(system)} {code}"
    return kb.valuesets.match_text(concept_text(concept)), None


def _is_topical(resource: Mapping[str, Any], text: str) -> bool:
    """A topical or oral anesthetic is not a TPI (by name, dosage text or route)."""
    if TOPICAL.search(text):
        return True
    for d in resource.get("dosageInstruction") or []:
        if not isinstance(d, dict):
            continue
        if TOPICAL.search(str(d.get("text") or "")) or TOPICAL.search(concept_text(d.get("route"))):
            return True
        if any(c.get("code") in TOPICAL_ROUTES for c in codings(d.get("route"))):
            return True
    return False


def _as_tpi(r: Mapping[str, Any], ref: str, kb: Knowledge) -> TpiOrder | None:
    """The draft order as a TPI order, or None when it is not one."""
    kind = r.get("resourceType")
    if kind == "ServiceRequest":
        hits, code = concept_matches(kb, r.get("code"))
        if "tpi_procedure" in hits:
            return TpiOrder(ref, "procedure", r, concept_text(r.get("code")) or "TPI", code)
    elif kind == "MedicationRequest":
        concept = r.get("medicationCodeableConcept")
        hits, code = concept_matches(kb, concept)
        text = concept_text(concept)
        if "local_anesthetic" in hits and not _is_topical(r, text):
            return TpiOrder(ref, "anesthetic", r, text or "local anesthetic", code)
    return None


def tpi_orders(
    draft_orders: Any,
    kb: Knowledge,
    *,
    fhir: Fhir,
    selections: Sequence[str] | None = None,
) -> list[TpiOrder]:
    """The draft orders that are TPIs (``selections`` limits them for order-select)."""
    chosen = set(selections) if selections else None
    out: list[TpiOrder] = []
    for r in fhir.bundle_resources(draft_orders, "context.draftOrders"):
        ref = f"{r.get('resourceType')}/{r.get('id') or '?'}"
        if (chosen is not None and ref not in chosen) or r.get("status") in CLOSED_STATUSES:
            continue
        order = _as_tpi(r, ref, kb)
        if order is not None:
            out.append(order)
    return out
