"""The kernel's plan rule: the stored plan *is* the planner's output, and only ``ready``.

The planner runs on the stored assessment's input with the posted targets and injectate,
and with a 24-hour ledger that adds every session recorded for the patient to what the
caller declares was given elsewhere; a plan that is refused, blocked or awaiting an
acknowledgement is not stored (422 with the planner's issues).
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ValidationError

from triggerpath.domain import integrity as rules
from triggerpath.domain.assessment import Assessment
from triggerpath.domain.dosing import PriorDose
from triggerpath.domain.planning import ProcedurePlan, plan_procedure
from triggerpath.errors import InvalidInput, WriteRefused
from triggerpath.services.kernel._context import Context, admit_text, refuse
from triggerpath.services.kernel._ledger import session_ledger
from triggerpath.services.model import Record
from triggerpath.services.payloads import LedgerEntry, PlanData, PlanIn


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, date | UUID):
        return value.isoformat() if isinstance(value, date) else str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def as_json(model: BaseModel) -> dict[str, Any]:
    """The model as JSON with its numbers as numbers (Decimal fields would become strings)."""
    data: dict[str, Any] = json.loads(json.dumps(model.model_dump(), default=_number))
    return data


def _assessment_input(assessment: Record) -> Assessment:
    try:
        return Assessment.model_validate(assessment.current.data["input"])
    except (ValidationError, KeyError):
        raise WriteRefused.rule(
            "(assessment)",
            "plan.invalid_input",
            "the assessment was recorded under an older input schema; record a new one to plan",
        ) from None


def _run_planner(
    ctx: Context, assessment: Assessment, body: PlanIn, ledger: list[LedgerEntry]
) -> ProcedurePlan:
    recorded = [PriorDose(agent=e.agent, mg=Decimal(str(e.mg))) for e in ledger]
    try:
        return plan_procedure(
            assessment,
            body.targets,
            body.injectate,
            as_of=ctx.today,
            policy=ctx.policy,
            knowledge=ctx.kb,
            prior_24h=[*body.prior_24h, *recorded],
            acknowledged_cautions=body.acknowledged_cautions,
            steroid=body.steroid,
        )
    except InvalidInput as err:
        raise WriteRefused(
            [rules.problem(p.field, "plan.invalid_input", p.reason) for p in err.problems]
        ) from None


def admit_plan(ctx: Context, assessment: Record, body: PlanIn) -> PlanData:
    """The plan to store for ``assessment``, or :class:`WriteRefused` (nothing stored)."""
    admit_text(body.model_dump(mode="json"))
    refuse(rules.plan_site_problems([t.sites for t in body.targets], ctx.bounds))
    start, _ = ctx.ledger_window(ctx.now)
    ledger = session_ledger(ctx, assessment.patient_id, start, ctx.now)
    result = _run_planner(ctx, _assessment_input(assessment), body, ledger)
    refuse(rules.plan_refusal(result))
    return PlanData(
        input=as_json(body),
        as_of=ctx.today,
        result=result.model_dump(mode="json"),
        ledger=ledger,
        knowledge_version=ctx.kb.version,
        policy=ctx.policy,
        policy_version=ctx.policy_version,
        assessment_version=assessment.version,
        sites=rules.planned_sites(result),
        planned_for=body.planned_for,
        note=body.note,
    )
