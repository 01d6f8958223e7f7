"""The safety kernel's pure rules: what a clinical record may hold.

Each rule is one small function that returns the problems it finds (never raises,
never reads a clock, a database or the network: ``now`` and the knowledge are passed
in). :mod:`triggerpath.services.kernel` gathers the facts a rule needs from the store,
calls the rules and raises one :class:`~triggerpath.errors.WriteRefused` with every
problem found. Rule ids (``RULES``) are stable: clients and the hazard log name them.

::

    value.out_of_range      a number outside its instrument's range (instruments.yaml)
    value.not_integer       an NRS (or a yes/no flag) that is not a whole number
    value.unknown_measure   an outcome instrument the knowledge base does not know
    time.future             a clinical time after now + the clock-skew allowance
    time.before_birth       an onset before the patient's year of birth
    time.before_session     a follow-up dated before the session it follows
    time.after_session      a baseline (relation ``before``) dated after its session
    text.control_character  a control character (other than tab/newline in free text)
    plan.not_ready          the planner refused, blocked or awaits acknowledgement
    plan.invalid_input      the planner refused its input (unknown muscle, strength ...)
    plan.too_many_sites     more sites than any TPI session has
    plan.stale              a plan whose assessment was corrected or retracted
    dose.implausible        more than N x an agent's highest maximum in one session
    dose.invalid_input      the dose engine refused its input (non-marketed strength ...)
    dose.exceeds_limit      over a dose limit (storable with an exceedance reason)
    dose.reason_too_short   an exceedance reason shorter than the minimum
    dose.weight_unknown     a local anesthetic session with no recorded weight
    dose.no_amount          a local anesthetic site with neither strength nor mg
    session.unknown_agent   an agent that is neither a local anesthetic, a steroid nor
                            saline / dry needling
    author.operator_mismatch  an operator other than the signed-in user
    author.performer_invalid  a performer who is not an active clinician or nurse
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from triggerpath.domain.assessment import Side
from triggerpath.domain.planning import ProcedurePlan
from triggerpath.domain.text import control_character_problems
from triggerpath.errors import FieldProblem, RuleProblem
from triggerpath.knowledge.integrity import Integrity
from triggerpath.knowledge.loader import Knowledge

RULES = (
    "value.out_of_range",
    "value.not_integer",
    "value.unknown_measure",
    "time.future",
    "time.before_birth",
    "time.before_session",
    "time.after_session",
    "text.control_character",
    "plan.not_ready",
    "plan.invalid_input",
    "plan.too_many_sites",
    "plan.stale",
    "dose.implausible",
    "dose.invalid_input",
    "dose.exceeds_limit",
    "dose.reason_too_short",
    "dose.weight_unknown",
    "dose.no_amount",
    "session.unknown_agent",
    "author.operator_mismatch",
    "author.performer_invalid",
)
#: Free-text fields (the last path segment): tab and newline allowed, nothing else.
FREE_TEXT_FIELDS = frozenset({"note", "reason", "exceedance_reason", "text"})
#: A date without a time is "in the future" only once it is tomorrow everywhere (UTC+14).
LATEST_UTC_OFFSET = timedelta(hours=14)


def problem(field: str, rule: str, reason: str, statement_ids: Iterable[str] = ()) -> RuleProblem:
    """A problem found by ``rule`` (one of :data:`RULES`)."""
    assert rule in RULES, rule
    return RuleProblem(field, reason, rule, tuple(statement_ids))


# --------------------------------------------------------------------------- text
def text_problems(data: Any, prefix: str = "") -> list[FieldProblem]:
    """Control characters anywhere in posted data (the one rule of domain/text.py)."""
    return [
        problem(p.field, "text.control_character", p.reason)
        for p in control_character_problems(data, prefix, multiline_fields=FREE_TEXT_FIELDS)
    ]


# --------------------------------------------------------------------------- time
def future_time_problem(
    field: str, when: datetime, now: datetime, skew: timedelta
) -> FieldProblem | None:
    """A clinical time later than ``now`` plus the clock-skew allowance."""
    if when <= now + skew:
        return None
    return problem(
        field,
        "time.future",
        f"{when.isoformat()} is in the future (now {now.isoformat(timespec='minutes')}, "
        f"allowance {int(skew.total_seconds() // 60)} min); record what has happened",
    )


def future_date_problem(field: str, day: date, now: datetime) -> FieldProblem | None:
    """A clinical date that is tomorrow even in the easternmost time zone."""
    latest = (now + LATEST_UTC_OFFSET).date()
    if day <= latest:
        return None
    return problem(field, "time.future", f"{day.isoformat()} is in the future")


def onset_problem(onset: date | None, birth_year: int | None) -> FieldProblem | None:
    """An episode onset before the patient was born."""
    if onset is None or birth_year is None or onset.year >= birth_year:
        return None
    return problem(
        "onset",
        "time.before_birth",
        f"{onset.isoformat()} is before the year of birth {birth_year}",
    )


def follow_up_problem(measured_on: date, session_day: date) -> FieldProblem | None:
    """A follow-up (relation ``after``) dated before the session it follows."""
    if measured_on >= session_day:
        return None
    return problem(
        "measured_on",
        "time.before_session",
        f"a follow-up on {measured_on.isoformat()} cannot be before the session it follows "
        f"({session_day.isoformat()})",
    )


def baseline_problem(measured_on: date, session_day: date) -> FieldProblem | None:
    """A baseline (relation ``before``) dated after the session it precedes."""
    if measured_on <= session_day:
        return None
    return problem(
        "measured_on",
        "time.after_session",
        f"a score before the session cannot be dated {measured_on.isoformat()}, after the "
        f"session ({session_day.isoformat()}); record it as relation 'after'",
    )


# --------------------------------------------------------------------------- values
def _range_problem(field: str, value: float, lo: float, hi: float, what: str) -> FieldProblem:
    return problem(
        field, "value.out_of_range", f"{value:g} is outside the range of {what} ({lo:g}-{hi:g})"
    )


def outcome_value_problems(
    instrument: str,
    value: float,
    items: dict[str, float] | None,
    kb: Knowledge,
    bounds: Integrity,
) -> list[FieldProblem]:
    """The value (and item answers) against the instrument's range in the knowledge data."""
    found = next((i for i in kb.instruments.instruments if i.id == instrument), None)
    if found is not None:
        lo, hi, what, integer = (
            found.score_min,
            found.score_max,
            f"{found.name} ({found.unit})",
            instrument in bounds.integer_instruments,
        )
    elif (measure := bounds.measure(instrument)) is not None:
        lo, hi, what, integer = measure.min, measure.max, measure.name, measure.integer
    else:
        known = sorted(
            [i.id for i in kb.instruments.instruments] + [m.id for m in bounds.follow_up_measures]
        )
        return [
            problem(
                "instrument",
                "value.unknown_measure",
                f"unknown {instrument!r}; known: {', '.join(known)}",
            )
        ]
    problems: list[FieldProblem] = []
    if not lo <= value <= hi:
        problems.append(_range_problem("value", value, lo, hi, what))
    elif integer and value != int(value):
        problems.append(
            problem("value", "value.not_integer", f"{what} is a whole number, not {value:g}")
        )
    if found is not None and items:
        problems += _item_problems(items, found.items)
    return problems


def _item_problems(items: dict[str, float], spec: Sequence[Any]) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    for key, answer in items.items():
        number = int(key[4:]) if key.startswith("item") and key[4:].isdigit() else 0
        if not 1 <= number <= len(spec):
            problems.append(
                problem(
                    f"items.{key}",
                    "value.unknown_measure",
                    f"no item {key} (item1-item{len(spec)})",
                )
            )
        elif not spec[number - 1].min <= answer <= spec[number - 1].max:
            item = spec[number - 1]
            problems.append(
                _range_problem(f"items.{key}", answer, item.min, item.max, f"item {number}")
            )
    return problems


# --------------------------------------------------------------------------- plans
class PlannedSite(BaseModel):
    """One planned injection: a target muscle and one component of the mixture."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    muscle: str = Field(description="muscle id from the knowledge base")
    side: Side
    agent: str = Field(min_length=2, max_length=40, pattern=r"^[a-z][a-z0-9_]+$")
    concentration_percent: float | None = Field(default=None, gt=0, le=10)
    volume_ml: float = Field(gt=0, le=50)
    epinephrine: bool = False
    needle_gauge: int | None = Field(default=None, ge=18, le=34)
    needle_length_mm: float | None = Field(default=None, gt=0, le=150)
    guidance: Literal["landmark", "ultrasound"] | None = None


def planned_sites(plan: ProcedurePlan) -> list[PlannedSite]:
    """The sites of a ready plan: per target, each stock solution (and saline) by its parts."""
    if plan.injectate is None:
        return []
    inj = plan.injectate
    total_parts = sum((s.parts for s in inj.solutions), Decimal(0)) + inj.saline_parts
    out: list[PlannedSite] = []
    for card in plan.targets:
        common: dict[str, Any] = {
            "muscle": card.muscle,
            "side": card.side,
            "needle_gauge": card.needle.gauge_max,
            "needle_length_mm": float(card.needle.length_mm_max),
            "guidance": "ultrasound" if card.guidance.startswith("ultrasound") else "landmark",
        }
        for s in inj.solutions:
            ml = round(float(card.volume_ml * s.parts / total_parts), 3)
            out.append(
                PlannedSite(
                    agent=s.agent,
                    concentration_percent=float(s.percent),
                    epinephrine=s.epinephrine,
                    volume_ml=ml,
                    **common,
                )
            )
        if inj.saline_parts:
            ml = round(float(card.volume_ml * inj.saline_parts / total_parts), 3)
            out.append(PlannedSite(agent="saline", volume_ml=ml, **common))
    return out


def plan_refusal(plan: ProcedurePlan) -> list[FieldProblem]:
    """Why a plan that is not ``ready`` cannot be stored: the planner's own issues."""
    if plan.status == "ready":
        return []
    found: list[FieldProblem] = [
        problem(
            ", ".join(i.fields) or "targets",
            "plan.not_ready",
            f"{plan.status}: {i.text}",
            i.statement_ids,
        )
        for i in plan.issues
    ]
    if not found:  # refused: the engine's reasons say why
        found = [
            problem("(assessment)", "plan.not_ready", f"{plan.status}: {r.text}", r.statement_ids)
            for r in plan.reasons
        ]
    return found or [problem("(plan)", "plan.not_ready", f"{plan.status}: {plan.headline}")]


def plan_site_problems(target_sites: Sequence[int], bounds: Integrity) -> list[FieldProblem]:
    """More injection sites in one plan than any TPI session has."""
    total = sum(target_sites)
    if total <= bounds.plan.max_sites:
        return []
    return [
        problem(
            "targets",
            "plan.too_many_sites",
            f"{total} sites in one plan; at most {bounds.plan.max_sites} (a typing error?)",
        )
    ]


# --------------------------------------------------------------------------- sessions
class SiteLike(Protocol):
    """What the session rules read of a site (planned or performed)."""

    @property
    def muscle(self) -> str: ...
    @property
    def side(self) -> str: ...
    @property
    def agent(self) -> str: ...
    @property
    def concentration_percent(self) -> float | None: ...
    @property
    def volume_ml(self) -> float: ...


class Deviation(BaseModel):
    """One way a session differs from the plan it carries out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal[
        "no_plan", "stale_plan", "other_muscle", "other_agent", "other_concentration", "more_volume"
    ]
    field: str
    text: str


def _key(s: SiteLike) -> tuple[str, str]:
    return s.muscle, s.side


def deviations(planned: Sequence[SiteLike] | None, done: Sequence[SiteLike]) -> list[Deviation]:
    """Each way ``done`` departs from ``planned``: other muscle, agent, strength, more volume."""
    if planned is None:
        return [Deviation(kind="no_plan", field="plan_id", text="no plan named for this session")]
    out: list[Deviation] = []
    muscles = {_key(p) for p in planned}
    for i, s in enumerate(done):
        at = f"sites[{i}]"
        if _key(s) not in muscles:
            out.append(
                Deviation(
                    kind="other_muscle", field=at, text=f"{s.side} {s.muscle} was not planned"
                )
            )
            continue
        same = [p for p in planned if _key(p) == _key(s) and p.agent == s.agent]
        if not same:
            out.append(
                Deviation(
                    kind="other_agent",
                    field=f"{at}.agent",
                    text=f"{s.agent} was not planned for {s.side} {s.muscle}",
                )
            )
        elif s.concentration_percent is not None and all(
            p.concentration_percent != s.concentration_percent for p in same
        ):
            out.append(
                Deviation(
                    kind="other_concentration",
                    field=f"{at}.concentration_percent",
                    text=f"{s.agent} {s.concentration_percent:g}% was not the planned strength",
                )
            )
    out += _volume_deviations(planned, done)
    return out


def _volume_deviations(planned: Sequence[SiteLike], done: Sequence[SiteLike]) -> list[Deviation]:
    def totals(sites: Sequence[SiteLike]) -> dict[tuple[str, str, str], float]:
        sums: dict[tuple[str, str, str], float] = {}
        for s in sites:
            k = (s.muscle, s.side, s.agent)
            sums[k] = sums.get(k, 0.0) + s.volume_ml
        return sums

    plan_ml = totals(planned)
    return [
        Deviation(
            kind="more_volume",
            field="sites",
            text=f"{ml:g} mL {agent} into {side} {muscle}; "
            f"{plan_ml[(muscle, side, agent)]:g} mL planned",
        )
        for (muscle, side, agent), ml in totals(done).items()
        if (muscle, side, agent) in plan_ml and ml > plan_ml[(muscle, side, agent)] + 1e-9
    ]


@dataclass(frozen=True)
class LaSite:
    """A local anesthetic given at one site: where it is on the form, and how much."""

    index: int
    agent: str
    percent: Decimal
    ml: Decimal
    epinephrine: bool


def agent_problems(agents: Sequence[str], kb: Knowledge, bounds: Integrity) -> list[FieldProblem]:
    """Agents that are neither local anesthetics, corticosteroids nor saline / dry needling."""
    inj = kb.injectates
    known = {la.id for la in inj.local_anesthetics}
    known |= {s.id for s in inj.corticosteroids.agents} | set(bounds.session.other_agents)
    return [
        problem(
            f"sites[{i}].agent",
            "session.unknown_agent",
            f"unknown agent {a!r}; known: {', '.join(sorted(known))}",
        )
        for i, a in enumerate(agents)
        if a not in known
    ]


def implausible_problems(
    mg_by_agent: dict[str, float], kb: Knowledge, bounds: Integrity
) -> list[FieldProblem]:
    """More of an agent in one session than N x its highest published single-dose maximum."""
    multiple = bounds.session.max_multiple_of_agent_max
    problems: list[FieldProblem] = []
    for agent, mg in mg_by_agent.items():
        la = kb.injectates.agent(agent)
        if la is None:
            continue
        caps = [
            e.max_mg for epi in (False, True) for e in la.form_limits(epi) if e.max_mg is not None
        ]
        ceiling = float(max(caps)) * multiple
        if mg > ceiling:
            problems.append(
                problem(
                    "sites",
                    "dose.implausible",
                    f"{mg:g} mg {agent} in one session is more than {multiple} x its highest "
                    f"maximum ({float(max(caps)):g} mg): a typing error, not a storable event",
                    bounds.session.exceedance_statement_ids,
                )
            )
    return problems


def ledger_window(at: datetime, hours: int) -> tuple[datetime, datetime]:
    """Sessions this close to ``at`` (either side) count towards its 24-hour totals.

    Both sides: a session recorded late (documented after a later one) must still see the
    dose given after it, so neither session's record understates the day's total.
    """
    span = timedelta(hours=hours)
    return at - span, at + span


def exceedance_problems(
    exceeds: bool,
    reason: str | None,
    statement_ids: Sequence[str],
    headline: str,
    bounds: Integrity,
) -> list[FieldProblem]:
    """Over a limit: refused without an exceedance reason of the minimum length."""
    if not exceeds:
        return []
    minimum = bounds.session.min_exceedance_reason_chars
    if reason is None:
        return [
            problem(
                "exceedance_reason",
                "dose.exceeds_limit",
                f"{headline.rstrip('.')}. Recording a dose over the limit needs exceedance_reason "
                f"(at least {minimum} characters); the session is then flagged as a safety event",
                statement_ids,
            )
        ]
    if len(reason.strip()) < minimum:
        return [
            problem(
                "exceedance_reason",
                "dose.reason_too_short",
                f"at least {minimum} characters: say why the limit was exceeded",
                statement_ids,
            )
        ]
    return []


# --------------------------------------------------------------------------- safety events
class SafetyEvent(BaseModel):
    """A recorded session that broke a dose limit: what to watch for and what to do."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["dose_exceeded"] = "dose_exceeded"
    session_id: str
    performed_at: datetime
    headline: str
    exceedance_reason: str | None
    watch_early: list[str] = Field(description="early signs of systemic toxicity (LAST)")
    watch_late: list[str]
    response: str = Field(description="what to do: observation and treatment advice")
    statement_ids: list[str]


def dose_safety_event(
    session_id: str, data: dict[str, Any], kb: Knowledge, bounds: Integrity
) -> SafetyEvent | None:
    """The safety event of a stored session, if it was recorded over a dose limit."""
    if not data.get("dose_exceeded"):
        return None
    tox = kb.injectates.toxicity
    dose = data.get("dose") or {}
    ids = dict.fromkeys([*bounds.session.exceedance_statement_ids, *tox.statement_ids])
    return SafetyEvent(
        session_id=session_id,
        performed_at=datetime.fromisoformat(data["performed_at"]),
        headline=str(dose.get("headline") or "dose over the limit"),
        exceedance_reason=data.get("exceedance_reason"),
        watch_early=list(tox.early),
        watch_late=list(tox.late),
        response=tox.response.strip(),
        statement_ids=list(ids),
    )
