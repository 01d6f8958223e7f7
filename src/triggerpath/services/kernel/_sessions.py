"""The kernel's session rule: what was done, checked against the 24-hour ledger.

A session records what happened, so it can be stored even over a dose limit, but never
silently: over the limit it needs ``exceedance_reason`` and is kept with
``dose_exceeded: true`` (a safety event in the course and timeline). What cannot have
happened (over the plausibility bounds of ``integrity.yaml``) is refused even with a
reason. The operator is the signed-in user; a session performed by someone else stays
``unattested`` until that performer attests it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from triggerpath.domain import integrity as rules
from triggerpath.domain.dosing import DoseCheck, DoseRequest, PriorDose, SolutionDose, check_dose
from triggerpath.errors import FieldProblem, InvalidInput, WriteRefused
from triggerpath.services.kernel._context import Context, _present, admit_text, refuse
from triggerpath.services.kernel._ledger import session_ledger
from triggerpath.services.model import Record, RecordQuery, Window
from triggerpath.services.payloads import (
    Attestation,
    LedgerEntry,
    PlannedSite,
    SessionData,
    SessionDose,
    SessionIn,
    SessionSite,
    mg_from,
)
from triggerpath.services.uow import UnitOfWork

#: A given mg may differ from % x mL by this fraction (rounding on the chart).
MG_TOLERANCE = 0.02


def sites_with_mg(body: SessionIn) -> tuple[list[SessionSite], dict[str, float]]:
    """Fill in mg per site from % w/v and mL; refuse a given mg that disagrees."""
    sites: list[SessionSite] = []
    problems: list[FieldProblem] = []
    totals: dict[str, float] = {}
    for i, site in enumerate(body.sites):
        mg = site.mg
        if site.concentration_percent is not None:
            computed = mg_from(site.concentration_percent, site.volume_ml)
            if mg is None:
                mg = computed
            elif abs(mg - computed) > MG_TOLERANCE * max(computed, 1.0):
                problems.append(
                    FieldProblem(
                        f"sites[{i}].mg",
                        f"{mg:g} mg does not match {site.concentration_percent:g} % x "
                        f"{site.volume_ml:g} mL = {computed:g} mg",
                    )
                )
        if mg is not None:
            totals[site.agent] = round(totals.get(site.agent, 0.0) + mg, 3)
        sites.append(site.model_copy(update={"mg": mg}))
    if problems:
        raise InvalidInput(problems)
    return sites, totals


def _authorship(uow: UnitOfWork, ctx: Context, body: SessionIn) -> tuple[str, Attestation]:
    """(performer, attestation): the operator is always the signed-in user."""
    me = ctx.actor.username
    if body.operator is not None and body.operator != me:
        raise WriteRefused.rule(
            "operator",
            "author.operator_mismatch",
            f"the operator is the signed-in user ({me}); name who performed it in performer",
        )
    performer = body.performer or me
    user = uow.users.by_username(performer)
    if user is None or not user.active or user.role not in ("clinician", "nurse"):
        raise WriteRefused.rule(
            "performer", "author.performer_invalid", "not an active clinician or nurse"
        )
    return performer, "attested" if performer == me else "unattested"


def _plan_of(uow: UnitOfWork, episode: Record, plan_id: UUID | None) -> Record | None:
    if plan_id is None:
        return None
    plan = uow.records.get(plan_id)
    if plan is None or plan.kind != "plan" or plan.patient_id != episode.patient_id:
        raise InvalidInput.single("plan_id", "not a plan of this patient")
    if plan.status != "active":
        raise InvalidInput.single("plan_id", "the plan was entered in error")
    return plan


def _patient_measures(uow: UnitOfWork, episode: Record, plan: Record | None) -> dict[str, Any]:
    """Weight, height and sex from the plan's assessment, else the episode's latest one."""
    source: Record | None = None
    if plan is not None and plan.parent_id is not None:
        source = uow.records.get(plan.parent_id)
    if source is None or source.status != "active":
        found, _ = uow.records.page(RecordQuery("assessment", episode.id), Window(limit=200))
        source = found[-1] if found else None
    if source is None:
        return {}
    patient: dict[str, Any] = source.current.data.get("input", {}).get("patient", {})
    return patient


def _solutions(sites: list[SessionSite], ctx: Context) -> tuple[list[SolutionDose], list[int]]:
    """The local anesthetic sites as dose-engine solutions, with their site index."""
    out: list[SolutionDose] = []
    where: list[int] = []
    problems: list[FieldProblem] = []
    for i, s in enumerate(sites):
        if ctx.kb.injectates.agent(s.agent) is None:
            continue
        if s.mg is None:
            problems.append(
                rules.problem(
                    f"sites[{i}]", "dose.no_amount", "give concentration_percent (or mg) for it"
                )
            )
            continue
        ml = Decimal(str(s.volume_ml))
        percent = Decimal(str(s.concentration_percent)) if s.concentration_percent else None
        if percent is None:
            percent = (Decimal(str(s.mg)) / (ml * 10)).normalize()
        out.append(SolutionDose(agent=s.agent, percent=percent, ml=ml, epinephrine=s.epinephrine))
        where.append(i)
    refuse(problems)
    return out, where


def _site_field(field: str, where: list[int]) -> str:
    if not field.startswith("solutions["):
        return field
    index, _, rest = field[len("solutions[") :].partition("]")
    rest = rest.replace(".percent", ".concentration_percent").replace(".ml", ".volume_ml")
    return f"sites[{where[int(index)]}]{rest}"


def _dose(
    ctx: Context, measures: dict[str, Any], sites: list[SessionSite], ledger: list[LedgerEntry]
) -> DoseCheck | None:
    """The dose engine on this session's local anesthetic plus the ledger (None if none)."""
    solutions, where = _solutions(sites, ctx)
    if not solutions:
        return None
    if measures.get("weight_kg") is None:
        raise WriteRefused.rule(
            "sites",
            "dose.weight_unknown",
            "no weight is recorded for this patient: record an assessment with the weight "
            "before a session with local anesthetic, so its dose can be checked",
        )
    sex = measures.get("sex")
    request = DoseRequest(
        weight_kg=Decimal(str(measures["weight_kg"])),
        height_cm=Decimal(str(measures["height_cm"])) if measures.get("height_cm") else None,
        sex=sex if sex in ("female", "male") else None,
        solutions=solutions,
        prior_24h=[PriorDose(agent=e.agent, mg=Decimal(str(e.mg))) for e in ledger],
    )
    try:
        return check_dose(request, ctx.kb, policy=ctx.policy)
    except InvalidInput as err:
        raise WriteRefused(
            [
                rules.problem(_site_field(p.field, where), "dose.invalid_input", p.reason)
                for p in err.problems
            ]
        ) from None


def _summary(check: DoseCheck) -> SessionDose:
    ids = {sid for r in check.reasons for sid in r.statement_ids}
    ids |= set(check.toxicity.statement_ids)
    return SessionDose(
        level=check.level,
        headline=check.headline,
        fraction=float(check.fraction),
        statement_ids=sorted(ids),
    )


def _deviations(plan: Record | None, sites: list[SessionSite]) -> list[rules.Deviation]:
    """How the session departs from its plan; a stale plan is itself a deviation."""
    if plan is None:
        return rules.deviations(None, sites)
    planned = [PlannedSite.model_validate(s) for s in plan.current.data.get("sites", [])]
    found = rules.deviations(planned, sites)
    if plan.current.data.get("stale"):
        why = plan.current.data.get("stale_reason") or "its assessment changed"
        found.insert(
            0, rules.Deviation(kind="stale_plan", field="plan_id", text=f"the plan is stale: {why}")
        )
    return found


def _first_checks(ctx: Context, body: SessionIn) -> None:
    admit_text(body.model_dump(mode="json"))
    problems = _present(
        rules.future_time_problem("performed_at", body.performed_at, ctx.now, ctx.skew)
    )
    problems += rules.agent_problems([s.agent for s in body.sites], ctx.kb, ctx.bounds)
    if len(body.sites) > ctx.bounds.session.max_sites:
        problems.append(
            rules.problem("sites", "dose.implausible", f"over {ctx.bounds.session.max_sites} sites")
        )
    refuse(problems)


def admit_session(
    ctx: Context, episode: Record, body: SessionIn, *, replacing: UUID | None = None
) -> SessionData:
    """The session to store under ``episode``, or :class:`WriteRefused` (nothing stored)."""
    _first_checks(ctx, body)
    uow = ctx.uow
    performer, attestation = _authorship(uow, ctx, body)
    plan = _plan_of(uow, episode, body.plan_id)
    sites, totals = sites_with_mg(body)
    refuse(rules.implausible_problems(totals, ctx.kb, ctx.bounds))
    start, end = ctx.ledger_window(body.performed_at)
    ledger = session_ledger(ctx, episode.patient_id, start, end, exclude=replacing)
    check = _dose(ctx, _patient_measures(uow, episode, plan), sites, ledger)
    dose = _summary(check) if check is not None else None
    exceeded = dose is not None and dose.level == "exceeds"
    refuse(
        rules.exceedance_problems(
            exceeded,
            body.exceedance_reason,
            dose.statement_ids if dose else (),
            dose.headline if dose else "",
            ctx.bounds,
        )
    )
    return SessionData(
        performed_at=body.performed_at,
        operator=ctx.actor.username,
        performer=performer,
        attestation=attestation,
        plan_id=body.plan_id,
        sites=sites,
        complications=body.complications,
        note=body.note,
        total_mg_by_agent=totals,
        dose=dose,
        ledger=ledger,
        dose_exceeded=exceeded,
        exceedance_reason=body.exceedance_reason,
        deviations=_deviations(plan, sites),
    )
