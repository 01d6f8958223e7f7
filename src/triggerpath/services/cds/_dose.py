"""The dose card of an anesthetic draft order: :func:`~triggerpath.domain.dosing.check_dose`.

The order's agent, strength and volume are read from its text and dosage; the last 24 hours'
administrations count toward the daily maximum. Nothing missing is guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from pydantic import ValidationError

from triggerpath.domain.dosing import DoseCheck, DoseRequest, PriorDose, SolutionDose, check_dose
from triggerpath.domain.policy import Policy
from triggerpath.domain.validation import problems_from
from triggerpath.errors import InvalidInput
from triggerpath.knowledge.loader import Knowledge
from triggerpath.services.cds._builder import Cards, CardText, Why
from triggerpath.services.cds._drafts import TpiOrder
from triggerpath.services.cds._model import EPINEPHRINE, Indicator, ids
from triggerpath.services.cds._ports import Given, Record
from triggerpath.services.cds._record import tpis_in_last_day

PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
MG_PER_ML = re.compile(r"(\d+(?:\.\d+)?)\s*MG/ML", re.IGNORECASE)
DOSE_INDICATOR: dict[str, Indicator] = {"ok": "info", "caution": "warning", "exceeds": "critical"}
ML_UNITS = frozenset({"ml", "milliliter", "millilitre"})
DOSE_IDS = ("S000.28", "S000.29")


def _agent_of(kb: Knowledge, text: str) -> str | None:
    """The local anesthetic a text names (first known word)."""
    for word in re.split(r"[^a-z]+", text.lower()):
        la = kb.injectates.agent(word) if word else None
        if la is not None:
            return la.id
    return None


ML_STEP = Decimal("0.000001")
LARGE = Decimal(10) ** 7  # beyond the engine's bound: refused there, named


def _percent(text: str) -> Decimal | None:
    """The strength in %, from "1%" or "10 MG/ML" (10 mg/mL = 1%)."""
    m = PERCENT.search(text)
    if m:
        return Decimal(m.group(1))
    m = MG_PER_ML.search(text)
    return Decimal(m.group(1)) / 10 if m else None


def _quantity_ml(q: Any, percent: Decimal | None, *, mg_ok: bool) -> Decimal | None:
    """A quantity in mL (a mg quantity converts with the strength)."""
    if not isinstance(q, dict) or not isinstance(q.get("value"), int | float):
        return None
    unit = str(q.get("code") or q.get("unit") or "").lower()
    value = Decimal(str(q["value"]))
    if unit in ML_UNITS:
        return _up(value)
    if mg_ok and unit == "mg" and percent:
        return _up(value / (percent * 10))
    return None


def _up(ml: Decimal) -> Decimal:
    """A volume to the engine's 6 decimal places, rounded up: the dose is never understated."""
    return ml.quantize(ML_STEP, rounding=ROUND_CEILING) if ml.is_finite() and ml < LARGE else ml


def _ml(resource: Mapping[str, Any], percent: Decimal | None) -> Decimal | None:
    """Volume of a local anesthetic order: dose in mL (or mg with a strength), else dispense."""
    for d in resource.get("dosageInstruction") or []:
        for dr in (d.get("doseAndRate") or []) if isinstance(d, dict) else []:
            q = dr.get("doseQuantity") if isinstance(dr, dict) else None
            ml = _quantity_ml(q, percent, mg_ok=True)
            if ml is not None:
                return ml
    quantity = (resource.get("dispenseRequest") or {}).get("quantity")
    return _quantity_ml(quantity, percent, mg_ok=False)


def _prior_mg(a: Given) -> Decimal | None:
    """An administration's dose in mg (mL converts with the strength in its name)."""
    unit = (a.dose_unit or "").lower()
    if a.dose_value is None:
        return None
    if unit == "mg":
        return a.dose_value
    pct = _percent(f"{a.name} {a.text or ''}") if unit == "ml" else None
    return pct * 10 * a.dose_value if pct is not None else None


def _prior_doses(snap: Record, kb: Knowledge) -> tuple[list[PriorDose], list[str]]:
    """Doses of the last 24 h that count, and the references without a usable dose."""
    prior: list[PriorDose] = []
    unknown: list[str] = []
    for a in snap.administrations_24h:
        agent, mg = _agent_of(kb, a.name), _prior_mg(a)
        if agent is None or mg is None:
            unknown.append(a.reference)
        else:
            prior.append(PriorDose(agent=agent, mg=mg))
    if not snap.administrations_24h:  # a TPI in the last 24 h without a recorded dose
        unknown += [t.reference for t in tpis_in_last_day(snap)]
    return prior, unknown


@dataclass(frozen=True)
class _Order:
    agent: str | None
    percent: Decimal | None
    ml: Decimal | None
    epinephrine: bool

    def missing(self, snap: Record) -> list[str]:
        """What the check cannot do without."""
        gaps = [
            (self.agent is None, "which local anesthetic"),
            (self.percent is None, "the strength (%)"),
            (self.ml is None, "the volume (mL)"),
            (snap.weight is None, "a recent body weight"),
        ]
        return [what for absent, what in gaps if absent]


def _read_order(order: TpiOrder, kb: Knowledge) -> _Order:
    percent = _percent(order.text)
    return _Order(
        _agent_of(kb, order.text),
        percent,
        _ml(order.resource, percent),
        bool(EPINEPHRINE.search(order.text)),
    )


def _incomplete_card(b: Cards, order: TpiOrder, snap: Record, missing: list[str]) -> None:
    weight_gaps = [f"- {m.field}: {m.why}" for m in snap.missing if m.field == "patient.weight_kg"]
    text = CardText(
        "dose-check-incomplete",
        "Dose check",
        f"Dose of {order.text} not checked: missing {', '.join(missing)}",
        "warning",
        [
            "The local anesthetic dose cannot be checked against the weight-based and "
            f"24-hour limits without {', '.join(missing)}; TriggerPath does not guess them.",
            *weight_gaps,
        ],
        DOSE_IDS,
    )
    b.add(text, Why("dose.check_dose", inputs=["patient.weight_kg", "draftOrders"]))


def _invalid_card(b: Cards, order: TpiOrder, exc: InvalidInput) -> None:
    text = CardText(
        "dose-check-invalid",
        "Dose check",
        f"Dose of {order.text} could not be checked: see details",
        "warning",
        ["The order could not be checked:", *(f"- {p}" for p in exc.problems)],
        DOSE_IDS,
    )
    b.add(text, Why("dose.check_dose", inputs=["draftOrders"]))


def _result_card(b: Cards, order: TpiOrder, result: DoseCheck, unknown: list[str]) -> None:
    lines = [
        f"**{result.headline}**",
        *(f"- {r.text}{ids(r.statement_ids)}" for r in result.reasons),
    ]
    if unknown:
        lines.append(
            "Earlier local anesthetic without a usable dose in the last 24 h (not counted): "
            + ", ".join(unknown)
        )
    w = result.weight
    lines.append(f"Weight used: {w.kg} kg ({w.basis}); {w.reason}")
    text = CardText(
        f"dose-{result.level}",
        "Dose check",
        f"Dose check ({order.text}): {result.headline}",
        DOSE_INDICATOR[result.level],
        lines,
        [*DOSE_IDS, *(s for r in result.reasons for s in r.statement_ids)],
    )
    why = Why(
        "dose.check_dose",
        inputs=["patient.weight_kg", "draftOrders", "MedicationAdministration (24 h)"],
        extra={"doseLevel": result.level, "doseFraction": str(result.fraction)},
    )
    b.add(text, why)


def dose_card(
    b: Cards, order: TpiOrder, snap: Record, kb: Knowledge, policy: Policy
) -> DoseCheck | None:
    """Check an anesthetic order's dose and add its card; the check, when it could run."""
    o = _read_order(order, kb)
    missing = o.missing(snap)
    if missing or o.agent is None or o.percent is None or o.ml is None or snap.weight is None:
        _incomplete_card(b, order, snap, missing)
        return None
    prior, unknown = _prior_doses(snap, kb)
    try:
        request = DoseRequest(
            weight_kg=snap.weight.value,
            height_cm=snap.height.value if snap.height else None,
            sex="female" if snap.sex == "female" else "male" if snap.sex == "male" else None,
            solutions=[
                SolutionDose(agent=o.agent, percent=o.percent, ml=o.ml, epinephrine=o.epinephrine)
            ],
            prior_24h=prior,
        )
        result = check_dose(request, kb, policy=policy)
    except ValidationError as exc:  # an EHR value outside the engine's bounds: say so
        _invalid_card(b, order, InvalidInput(problems_from(exc)))
        return None
    except InvalidInput as exc:
        _invalid_card(b, order, exc)
        return None
    _result_card(b, order, result, unknown)
    return result
