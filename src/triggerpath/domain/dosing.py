"""Local anesthetic dose check: pure and exact.

``check_dose`` takes the solutions to be injected (agent, strength, volume,
with or without epinephrine), the patient's weight and the doses of the last
24 hours, and says whether the totals stay within the limits:

- mg = percent x 10 x mL (1% = 10 mg/mL);
- each agent's maximum = the lower of mg/kg x weight and the absolute cap
  (limits per source in ``knowledge/data/injectates.yaml``; which source applies
  is ``Policy.dose_limit_source``, default the most conservative);
- the weight used (actual, ideal or lean) is ``Policy.dose_weight_basis`` and the
  result says which one and why;
- the 24-hour total adds the ledger of earlier doses;
- several agents add up (additive toxicity): the sum of each agent's dose as a
  fraction of its own maximum must stay at or below 1;
- ``level`` is ``exceeds`` above 1 (blocks), ``caution`` above
  ``Policy.dose_caution_fraction`` (default 0.8), otherwise ``ok``.

Arithmetic is exact: inputs and outputs are :class:`~decimal.Decimal`, every
comparison is made on exact fractions, and displayed numbers are rounded in the
safe direction (fractions up, remaining volumes and computed weights down).
No I/O, no clock: the planner, the CLI, the API and CDS Hooks all call this.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from triggerpath.domain.numbers import Quantity
from triggerpath.domain.policy import DEFAULT_POLICY, Policy
from triggerpath.domain.recommendation import Reason
from triggerpath.errors import FieldProblem, InvalidInput
from triggerpath.knowledge.injectates import DoseLimit, Injectates, LocalAnesthetic, WeightBasis
from triggerpath.knowledge.loader import Knowledge

Level = Literal["ok", "caution", "exceeds"]
LEVELS: tuple[Level, ...] = ("ok", "caution", "exceeds")
Sex = Literal["female", "male", "other", "unknown"]

#: Plausible adult ranges; outside them the input is almost surely a unit error.
WEIGHT_KG_RANGE = (Decimal(20), Decimal(400))
HEIGHT_CM_RANGE = (Decimal(120), Decimal(250))
MAX_ML = Decimal(500)
MIN_ML = Decimal("0.01")
MIN_PERCENT = Decimal("0.01")
MIN_PRIOR_MG = Decimal("0.01")
MAX_PRIOR_MG = Decimal(10000)
DOSE_IDS = ["S000.28"]
TOXICITY_IDS = ["S000.29"]


def _num(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


#: A Decimal that JSON renders as a number (exact in Python, a plain number in JSON).
Num = Annotated[Decimal, PlainSerializer(_num, return_type=int | float, when_used="json")]


class _In(BaseModel):
    """Input models are strict (see :mod:`triggerpath.domain.numbers` for the numbers)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SolutionDose(_In):
    """One local anesthetic solution drawn for this procedure."""

    agent: str = Field(
        min_length=1, max_length=60, description="lidocaine, bupivacaine, ropivacaine, mepivacaine"
    )
    percent: Quantity = Field(description="strength in % (1% = 10 mg/mL)")
    ml: Quantity = Field(description="volume of this solution in mL")
    epinephrine: bool = Field(default=False, description="solution contains epinephrine")


class PriorDose(_In):
    """A local anesthetic dose already given in the last 24 hours."""

    agent: str = Field(min_length=1, max_length=60)
    mg: Quantity = Field(description="milligrams given")
    hours_ago: Quantity | None = Field(
        default=None,
        ge=0,
        le=24,
        description="hours since this dose; null = not recorded (then it always counts)",
    )


class DoseRequest(_In):
    weight_kg: Quantity = Field(description="actual body weight in kg")
    height_cm: Quantity | None = Field(default=None, description="needed for ideal or lean weight")
    sex: Sex | None = Field(default=None, description="needed for ideal or lean weight")
    solutions: list[SolutionDose] = Field(min_length=1, max_length=20)
    prior_24h: list[PriorDose] = Field(default_factory=list, max_length=50)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WeightUsed(_Out):
    basis: WeightBasis = Field(description="the weight actually used for the mg/kg limits")
    requested_basis: WeightBasis = Field(description="the clinic policy's choice")
    kg: Num
    actual_kg: Num
    ideal_kg: Num | None
    lean_kg: Num | None
    reason: str
    references: list[str]


class SourceValue(_Out):
    source: str
    mg_per_kg: Num | None
    max_mg: Num | None
    reference: str


class AgentDose(_Out):
    """One agent in one form (plain or with epinephrine) for this procedure."""

    agent: str
    name: str
    epinephrine: bool
    mg: Num
    max_mg: Num = Field(description="the lower of mg/kg x weight and the cap")
    limited_by: Literal["weight", "cap"]
    mg_per_kg: Num | None
    mg_per_kg_source: str | None
    weight_limit_mg: Num | None
    cap_mg: Num | None
    cap_source: str | None
    fraction: Num = Field(description="mg / max_mg (rounded up)")
    level: Level
    sources: list[SourceValue] = Field(description="every source's values, kept side by side")
    source_range: str


class DailyDose(_Out):
    """One agent over the last 24 hours, this procedure included."""

    agent: str
    name: str
    prior_mg: Num
    now_mg: Num
    total_mg: Num
    max_mg: Num | None = Field(
        description="the 24-hour maximum; null when no source gives one (then earlier doses "
        "count against the single-dose maximum, prior_limit_mg, and today's doses against "
        "their own form's maximum)"
    )
    max_source: str
    prior_limit_mg: Num = Field(description="the maximum the earlier doses count against")
    fraction: Num
    level: Level
    sources: list[SourceValue]


class SolutionResult(_Out):
    agent: str
    percent: Num
    epinephrine: bool
    ml: Num
    mg_per_ml: Num
    mg: Num
    remaining_ml: Num = Field(
        description="more mL of this solution alone that keeps every limit (rounded down)"
    )


class MixtureRule(_Out):
    convention: str
    name: str
    text: str
    fraction_single: Num = Field(description="sum over agents of mg / maximum, this procedure")
    fraction_24h: Num = Field(description="the same sum over the 24-hour totals")
    limit: Num
    references: list[str]
    statement_ids: list[str]


class ToxicityWatch(_Out):
    name: str
    early: list[str]
    late: list[str]
    response: str
    statement_ids: list[str]


class DoseCheck(_Out):
    level: Level
    headline: str
    fraction: Num = Field(description="the larger of the two mixture sums (rounded up)")
    caution_fraction: Num
    limit_source: str
    weight: WeightUsed
    agents: list[AgentDose]
    daily: list[DailyDose]
    solutions: list[SolutionResult]
    mixture: MixtureRule
    reasons: list[Reason]
    toxicity: ToxicityWatch
    knowledge_version: str


# --------------------------------------------------------------------------- exact rounding
def _scaled(value: Fraction, places: int) -> Fraction:
    return value * Fraction(10) ** places


def round_down(value: Fraction, places: int) -> Decimal:
    return Decimal(math.floor(_scaled(value, places))).scaleb(-places)


def round_up(value: Fraction, places: int) -> Decimal:
    return Decimal(math.ceil(_scaled(value, places))).scaleb(-places)


def _exact(value: Fraction) -> Decimal:
    """A fraction whose decimal expansion terminates, as an exact Decimal."""
    d = Decimal(value.numerator) / Decimal(value.denominator)
    if Fraction(d) != value:  # pragma: no cover - only called on terminating values
        raise ArithmeticError(f"{value} has no exact decimal form")
    return d


def _fmt(value: Decimal) -> str:
    """A Decimal for people: no exponent, no trailing zeros."""
    return format(value.normalize(), "f")


# --------------------------------------------------------------------------- parsing
def parse_dose_request(data: Any) -> DoseRequest:
    """Validate raw JSON-like data into a ``DoseRequest`` or raise ``InvalidInput``."""
    from triggerpath.domain.validation import parse_input

    return parse_input(DoseRequest, data, "dose request")


def _finite(value: Decimal) -> bool:
    return value.is_finite()


def validate_request(
    request: DoseRequest, inj: Injectates, policy: Policy, prefix: str = ""
) -> list[FieldProblem]:
    """Every problem with a dose request, each naming its field."""
    pre = f"{prefix}." if prefix else ""
    problems: list[FieldProblem] = []
    w = request.weight_kg
    lo, hi = WEIGHT_KG_RANGE
    if not _finite(w) or w <= 0:
        problems.append(FieldProblem(f"{pre}weight_kg", "must be a weight of more than 0 kg"))
    elif not lo <= w <= hi:
        problems.append(
            FieldProblem(
                f"{pre}weight_kg",
                f"{_fmt(w)} kg is outside the adult range TriggerPath doses for "
                f"({lo}-{hi} kg); check the units",
            )
        )
    h = request.height_cm
    if h is not None:
        hlo, hhi = HEIGHT_CM_RANGE
        if not _finite(h) or not hlo <= h <= hhi:
            problems.append(
                FieldProblem(
                    f"{pre}height_cm",
                    f"must be between {hlo} and {hhi} cm (the range the weight formulas cover)",
                )
            )
    for i, s in enumerate(request.solutions):
        problems += solution_problems(
            s.agent, s.percent, s.epinephrine, inj, policy, f"{pre}solutions[{i}]"
        )
        if not _finite(s.ml) or s.ml <= 0:
            problems.append(
                FieldProblem(f"{pre}solutions[{i}].ml", "must be a volume of more than 0 mL")
            )
        elif s.ml < MIN_ML:
            problems.append(
                FieldProblem(
                    f"{pre}solutions[{i}].ml",
                    f"{_fmt(s.ml)} mL rounds to 0 at the {MIN_ML} mL a syringe measures",
                )
            )
        elif s.ml > MAX_ML:
            problems.append(
                FieldProblem(
                    f"{pre}solutions[{i}].ml",
                    f"{_fmt(s.ml)} mL is not a TPI volume (over {MAX_ML} mL)",
                )
            )
    problems += prior_problems(request.prior_24h, inj, f"{pre}prior_24h")
    return problems


def solution_problems(
    agent: str, percent: Decimal, epinephrine: bool, inj: Injectates, policy: Policy, at: str
) -> list[FieldProblem]:
    """Problems with one solution's agent, strength and epinephrine (``at`` = its field path)."""
    problems: list[FieldProblem] = []
    la = inj.agent(agent)
    if la is None:
        known = ", ".join(x.id for x in inj.local_anesthetics)
        problems.append(
            FieldProblem(f"{at}.agent", f"unknown local anesthetic {agent!r}; known: {known}")
        )
    if not _finite(percent) or percent <= 0:
        problems.append(FieldProblem(f"{at}.percent", "must be a strength of more than 0%"))
    elif percent > 100:
        problems.append(FieldProblem(f"{at}.percent", "a strength cannot be over 100%"))
    elif percent < MIN_PERCENT:
        problems.append(
            FieldProblem(
                f"{at}.percent",
                f"{_fmt(percent)}% rounds to 0 (below {MIN_PERCENT}%, no local anesthetic effect)",
            )
        )
    elif (
        la is not None
        and la.marketed(epinephrine)  # (no epinephrine form at all: reported below)
        and percent not in la.marketed(epinephrine)
        and not policy.allow_non_marketed_strength
    ):
        form = "with epinephrine" if epinephrine else "plain"
        offered = ", ".join(f"{_fmt(p)}%" for p in la.marketed(epinephrine))
        problems.append(
            FieldProblem(
                f"{at}.percent",
                f"{_fmt(percent)}% is not a marketed strength of {la.name.lower()} "
                f"({form}): {offered}. Compounded strengths need the clinic policy "
                "allow_non_marketed_strength",
            )
        )
    if la is not None and epinephrine and not la.marketed_percent.epinephrine:
        problems.append(
            FieldProblem(
                f"{at}.epinephrine",
                f"no {la.name.lower()} product with epinephrine is marketed for "
                "infiltration; use the plain solution",
            )
        )
    return problems


def prior_problems(prior: Sequence[PriorDose], inj: Injectates, at: str) -> list[FieldProblem]:
    """Problems with the 24-hour ledger (``at`` = the ledger's field path)."""
    problems: list[FieldProblem] = []
    known = ", ".join(x.id for x in inj.local_anesthetics)
    for i, p in enumerate(prior):
        if inj.agent(p.agent) is None:
            problems.append(
                FieldProblem(
                    f"{at}[{i}].agent", f"unknown local anesthetic {p.agent!r}; known: {known}"
                )
            )
        if not _finite(p.mg) or p.mg <= 0:
            problems.append(FieldProblem(f"{at}[{i}].mg", "must be a dose of more than 0 mg"))
        elif p.mg < MIN_PRIOR_MG:
            problems.append(
                FieldProblem(
                    f"{at}[{i}].mg", f"{_fmt(p.mg)} mg rounds to 0 (below {MIN_PRIOR_MG} mg)"
                )
            )
        elif p.mg > MAX_PRIOR_MG:
            problems.append(
                FieldProblem(f"{at}[{i}].mg", f"{_fmt(p.mg)} mg is not plausible; check the units")
            )
    return problems


# --------------------------------------------------------------------------- weight
def _devine(height_cm: Fraction, male: bool) -> Fraction:
    inches = height_cm / Fraction(254, 100)
    base = Fraction(50) if male else Fraction(91, 2)
    return base + Fraction(23, 10) * (inches - 60)


def _janmahasatian(weight: Fraction, height_cm: Fraction, male: bool) -> Fraction:
    bmi = weight / (height_cm / 100) ** 2
    if male:
        return 9270 * weight / (6680 + 216 * bmi)
    return 9270 * weight / (8780 + 244 * bmi)


def weight_for_dosing(
    weight_kg: Decimal,
    height_cm: Decimal | None,
    sex: Sex | None,
    basis: WeightBasis,
    inj: Injectates,
) -> WeightUsed:
    """The weight the mg/kg limits use, with the reason (never above the actual weight)."""
    actual = Fraction(weight_kg)
    male = sex == "male"
    sex_note = (
        ""
        if sex in ("male", "female")
        else " Sex is not recorded as male or female, so the lower (female) formula is used."
    )
    ideal: Decimal | None = None
    lean: Decimal | None = None
    if height_cm is not None:
        h = Fraction(height_cm)
        ideal = round_down(min(actual, max(_devine(h, male), Fraction(0))), 1)
        lean = round_down(min(actual, _janmahasatian(actual, h, male)), 1)
    item = inj.weight_basis(basis)
    refs = list(item.references)
    if basis == "actual" or height_cm is None:
        used: WeightBasis = "actual"
        kg = weight_kg
        if basis == "actual":
            reason = f"Actual body weight {_fmt(weight_kg)} kg, as the clinic policy sets."
        else:
            reason = (
                f"The clinic policy's weight basis, {item.name}, needs the height: it is not "
                f"recorded, so the actual weight {_fmt(weight_kg)} kg is used. Record the height "
                "for a lower, safer limit in heavier patients."
            )
            refs = list(inj.weight_basis("actual").references) + refs
    else:
        used = basis
        value = ideal if basis == "ideal" else lean
        assert value is not None
        kg = value
        capped = " (capped at the actual weight)" if value == weight_kg else ""
        reason = (
            f"{item.name} {_fmt(value)} kg{capped} from {_fmt(weight_kg)} kg and "
            f"{_fmt(height_cm)} cm, as the clinic policy sets: {item.formula}.{sex_note}"
        )
    return WeightUsed(
        basis=used,
        requested_basis=basis,
        kg=kg,
        actual_kg=weight_kg,
        ideal_kg=ideal,
        lean_kg=lean,
        reason=reason,
        references=refs,
    )


# --------------------------------------------------------------------------- limits
@dataclass(frozen=True)
class _Pick:
    value: Decimal | None
    source: str | None


def _pick(values: Sequence[tuple[Decimal | None, str]], policy_source: str) -> _Pick:
    """The value the policy selects: its own source's, else the most conservative."""
    given = [(v, s) for v, s in values if v is not None]
    if not given:
        return _Pick(None, None)
    if policy_source != "conservative":
        own = [(v, s) for v, s in given if s == policy_source]
        if own:
            return _Pick(own[0][0], own[0][1])
    low = min(v for v, _ in given)
    return _Pick(low, ", ".join(s for v, s in given if v == low))


@dataclass(frozen=True)
class SingleLimit:
    mg_per_kg: _Pick
    cap: _Pick
    weight_limit: Decimal | None
    max_mg: Decimal
    limited_by: Literal["weight", "cap"]


def single_limit(entries: list[DoseLimit], weight_kg: Decimal, policy_source: str) -> SingleLimit:
    """min(mg/kg x weight, cap) for one agent and form under the policy's source choice."""
    per_kg = _pick([(e.mg_per_kg, e.source) for e in entries], policy_source)
    cap = _pick([(e.max_mg, e.source) for e in entries], policy_source)
    weight_limit = per_kg.value * weight_kg if per_kg.value is not None else None
    options: list[tuple[Decimal, Literal["weight", "cap"]]] = []
    if weight_limit is not None:
        options.append((weight_limit, "weight"))
    if cap.value is not None:
        options.append((cap.value, "cap"))
    max_mg, by = min(options, key=lambda o: (o[0], o[1] != "cap"))
    return SingleLimit(per_kg, cap, weight_limit, max_mg, by)


def _sources(entries: Iterable[DoseLimit]) -> list[SourceValue]:
    return [
        SourceValue(source=e.source, mg_per_kg=e.mg_per_kg, max_mg=e.max_mg, reference=e.reference)
        for e in entries
    ]


def _source_range(entries: list[DoseLimit]) -> str:
    caps = sorted({e.max_mg for e in entries if e.max_mg is not None})
    kgs = sorted({e.mg_per_kg for e in entries if e.mg_per_kg is not None})
    parts = []
    if kgs:
        span = f"{_fmt(kgs[0])}" if len(kgs) == 1 else f"{_fmt(kgs[0])}-{_fmt(kgs[-1])}"
        parts.append(f"{span} mg/kg")
    if caps:
        span = f"{_fmt(caps[0])}" if len(caps) == 1 else f"{_fmt(caps[0])}-{_fmt(caps[-1])}"
        parts.append(f"cap {span} mg")
    agree = "sources agree" if len(caps) <= 1 and len(kgs) <= 1 else "sources differ"
    return f"{'; '.join(parts)} ({agree})"


def _level(fraction: Fraction, caution: Fraction) -> Level:
    if fraction > 1:
        return "exceeds"
    if fraction > caution:
        return "caution"
    return "ok"


# --------------------------------------------------------------------------- the check
@dataclass
class _Group:
    la: LocalAnesthetic
    epinephrine: bool
    mg: Fraction
    fields: list[str]


@dataclass
class _Ledger:
    """The 24-hour ledger summed per agent, with the fields each total came from."""

    mg: dict[str, Fraction]
    fields: dict[str, list[str]]
    expired: list[str]


@dataclass
class _Daily:
    """Per agent over 24 hours: the limit, what counts against it and the fraction used."""

    max_mg: dict[str, tuple[Decimal | None, str]]
    prior_limit: dict[str, Decimal]
    now_mg: dict[str, Fraction]
    fraction: dict[str, Fraction]


@dataclass
class _Totals:
    """Everything the check computed, for the result's figures and texts."""

    groups: dict[tuple[str, bool], _Group]
    singles: dict[tuple[str, bool], SingleLimit]
    frac_single: dict[tuple[str, bool], Fraction]
    ledger: _Ledger
    daily: _Daily
    sum_single: Fraction
    sum_24h: Fraction
    overall: Fraction
    level: Level
    caution: Fraction
    window_hours: Decimal


def _groups(request: DoseRequest, inj: Injectates, pre: str) -> dict[tuple[str, bool], _Group]:
    """This procedure's milligrams per agent and form (plain or with epinephrine)."""
    groups: dict[tuple[str, bool], _Group] = {}
    for i, s in enumerate(request.solutions):
        la = inj.agent(s.agent)
        assert la is not None
        g = groups.setdefault((la.id, s.epinephrine), _Group(la, s.epinephrine, Fraction(0), []))
        g.mg += Fraction(s.percent) * 10 * Fraction(s.ml)
        g.fields.append(f"{pre}solutions[{i}]")
    return groups


def _ledger(request: DoseRequest, inj: Injectates, policy: Policy, pre: str) -> _Ledger:
    """Earlier doses of the last 24 hours, summed per agent.

    Every earlier dose of every agent counts (additive toxicity does not care which agent
    came first), except one whose ``hours_ago`` is recorded and at least the policy's
    ``prior_dose_window_hours`` (default 24: none drops out early).
    """
    out = _Ledger({}, {}, [])
    for i, p in enumerate(request.prior_24h):
        la = inj.agent(p.agent)
        assert la is not None
        if p.hours_ago is not None and p.hours_ago >= policy.prior_dose_window_hours:
            out.expired.append(f"{pre}prior_24h[{i}]")
            continue
        out.mg[la.id] = out.mg.get(la.id, Fraction(0)) + Fraction(p.mg)
        out.fields.setdefault(la.id, []).append(f"{pre}prior_24h[{i}]")
    return out


def _daily(
    groups: dict[tuple[str, bool], _Group],
    singles: dict[tuple[str, bool], SingleLimit],
    frac_single: dict[tuple[str, bool], Fraction],
    ledger: _Ledger,
    inj: Injectates,
    weight_kg: Decimal,
    source: str,
) -> _Daily:
    """Each agent's 24-hour fraction (earlier + now against the 24-hour or single maximum).

    Labelled: (earlier + now) / 24-hour maximum. Unlabelled (TriggerPath convention): earlier
    doses count against the lowest single-dose maximum of the forms in play (their form is not
    recorded), today's doses against their own form's maximum.
    """
    out = _Daily({}, {}, {}, {})
    for aid in dict.fromkeys([*(g.la.id for g in groups.values()), *ledger.mg]):
        la = inj.agent(aid)
        assert la is not None
        out.now_mg[aid] = sum((g.mg for g in groups.values() if g.la.id == aid), Fraction(0))
        earlier = ledger.mg.get(aid, Fraction(0))
        picked = _pick([(d.max_mg, d.source) for d in la.limits_24h], source)
        if picked.value is not None and picked.source is not None:
            out.max_mg[aid] = (picked.value, picked.source)
            out.prior_limit[aid] = picked.value
            out.fraction[aid] = (earlier + out.now_mg[aid]) / Fraction(picked.value)
            continue
        forms = [k for k in singles if k[0] == aid]
        out.prior_limit[aid] = min(
            [singles[k].max_mg for k in forms]
            or [single_limit(la.form_limits(False), weight_kg, source).max_mg]
        )
        out.max_mg[aid] = (None, inj.unlabelled_24h_rule.id)
        out.fraction[aid] = earlier / Fraction(out.prior_limit[aid]) + sum(
            (frac_single[k] for k in forms), Fraction(0)
        )
    return out


def _totals(
    request: DoseRequest, inj: Injectates, weight: WeightUsed, policy: Policy, pre: str
) -> _Totals:
    """This procedure per agent and form, the 24-hour ledger, and both mixture sums."""
    source = policy.dose_limit_source
    caution = Fraction(policy.dose_caution_fraction)
    groups = _groups(request, inj, pre)
    singles = {
        key: single_limit(g.la.form_limits(g.epinephrine), weight.kg, source)
        for key, g in groups.items()
    }
    frac_single = {key: g.mg / Fraction(singles[key].max_mg) for key, g in groups.items()}
    ledger = _ledger(request, inj, policy, pre)
    daily = _daily(groups, singles, frac_single, ledger, inj, weight.kg, source)
    sum_single = sum(frac_single.values(), Fraction(0))
    sum_24h = sum(daily.fraction.values(), Fraction(0))
    overall = max(sum_single, sum_24h)
    level = _level(overall, caution)
    return _Totals(
        groups,
        singles,
        frac_single,
        ledger,
        daily,
        sum_single,
        sum_24h,
        overall,
        level,
        caution,
        policy.prior_dose_window_hours,
    )


def _agent_dose(key: tuple[str, bool], t: _Totals) -> AgentDose:
    """One agent and form of this procedure against its single-dose maximum."""
    g, lim, fr = t.groups[key], t.singles[key], t.frac_single[key]
    entries = g.la.form_limits(g.epinephrine)
    return AgentDose(
        agent=g.la.id,
        name=g.la.name,
        epinephrine=g.epinephrine,
        mg=_exact(g.mg),
        max_mg=lim.max_mg,
        limited_by=lim.limited_by,
        mg_per_kg=lim.mg_per_kg.value,
        mg_per_kg_source=lim.mg_per_kg.source,
        weight_limit_mg=lim.weight_limit,
        cap_mg=lim.cap.value,
        cap_source=lim.cap.source,
        fraction=round_up(fr, 4),
        level=_level(max(fr, t.daily.fraction[g.la.id]), t.caution),
        sources=_sources(entries),
        source_range=_source_range(entries),
    )


def _agent_reason(key: tuple[str, bool], t: _Totals, weight: WeightUsed) -> Reason:
    """How one agent's maximum was found and how much of it this procedure uses."""
    g, lim, fr = t.groups[key], t.singles[key], t.frac_single[key]
    entries = g.la.form_limits(g.epinephrine)
    form = "with epinephrine" if g.epinephrine else "plain"
    how = []
    if lim.weight_limit is not None:
        how.append(
            f"{_fmt(lim.mg_per_kg.value or Decimal(0))} mg/kg x {_fmt(weight.kg)} kg = "
            f"{_fmt(lim.weight_limit)} mg [{lim.mg_per_kg.source}]"
        )
    if lim.cap.value is not None:
        how.append(f"cap {_fmt(lim.cap.value)} mg [{lim.cap.source}]")
    return Reason(
        code=f"agent.{g.la.id}.{'epinephrine' if g.epinephrine else 'plain'}",
        text=(
            f"{g.la.name} {form}: {_fmt(_exact(g.mg))} mg now; maximum {_fmt(lim.max_mg)} mg "
            f"(lower of {' and '.join(how)}); {_pct(fr)} of it. Sources: "
            f"{_source_range(entries)}."
        ),
        fields=g.fields,
        statement_ids=DOSE_IDS,
    )


def _daily_dose(aid: str, t: _Totals, inj: Injectates) -> DailyDose:
    """One agent over 24 hours, earlier doses and this procedure together."""
    la = inj.agent(aid)
    assert la is not None
    mx, src = t.daily.max_mg[aid]
    earlier = t.ledger.mg.get(aid, Fraction(0))
    fr = t.daily.fraction[aid]
    return DailyDose(
        agent=aid,
        name=la.name,
        prior_mg=_exact(earlier),
        now_mg=_exact(t.daily.now_mg[aid]),
        total_mg=_exact(earlier + t.daily.now_mg[aid]),
        max_mg=mx,
        max_source=src,
        prior_limit_mg=t.daily.prior_limit[aid],
        fraction=round_up(fr, 4),
        level=_level(fr, t.caution),
        sources=[
            SourceValue(source=d.source, mg_per_kg=None, max_mg=d.max_mg, reference=d.reference)
            for d in la.limits_24h
        ],
    )


def _daily_reason(aid: str, t: _Totals, inj: Injectates) -> Reason | None:
    """The 24-hour sum of one agent in words (when there are earlier doses or a 24-h limit)."""
    la = inj.agent(aid)
    assert la is not None
    if aid not in t.ledger.mg and not la.limits_24h:
        return None
    mx, src = t.daily.max_mg[aid]
    limit_text = f"{_fmt(mx)} mg" if mx is not None else "the single-dose maximum"
    earlier = t.ledger.mg.get(aid, Fraction(0))
    total = earlier + t.daily.now_mg[aid]
    rule = (
        f"no source gives a 24-hour maximum, so earlier doses count against the "
        f"single-dose maximum of {_fmt(t.daily.prior_limit[aid])} mg (TriggerPath convention)"
        if src == inj.unlabelled_24h_rule.id
        else f"24-hour maximum [{src}]"
    )
    return Reason(
        code=f"daily.{aid}",
        text=(
            f"{la.name} over 24 hours: {_fmt(_exact(earlier))} mg "
            f"earlier + {_fmt(_exact(t.daily.now_mg[aid]))} mg now = {_fmt(_exact(total))} mg "
            f"against {limit_text} ({rule}); {_pct(t.daily.fraction[aid])} of the allowance."
        ),
        fields=t.ledger.fields.get(aid, [])
        + [f for g in t.groups.values() if g.la.id == aid for f in g.fields],
        statement_ids=DOSE_IDS,
    )


def _mixture_reason(t: _Totals, inj: Injectates) -> Reason | None:
    """The additive-toxicity sum in words, when more than one agent is in play."""
    in_groups = {g.la.id for g in t.groups.values()}
    if len(t.groups) + len([a for a in t.ledger.mg if a not in in_groups]) <= 1:
        return None
    mix = inj.mixture_convention
    return Reason(
        code="mixture",
        text=(
            f"{mix.name}: this procedure "
            + " + ".join(_pct(f) for f in t.frac_single.values())
            + f" = {_pct(t.sum_single)}; over 24 hours "
            + " + ".join(_pct(f) for f in t.daily.fraction.values())
            + f" = {_pct(t.sum_24h)} of the combined maximum."
        ),
        fields=[f for g in t.groups.values() for f in g.fields],
        statement_ids=list(mix.statement_ids),
    )


def _solution_result(s: SolutionDose, t: _Totals, inj: Injectates) -> SolutionResult:
    """One solution with the extra mL of it alone that keeps every limit."""
    la = inj.agent(s.agent)
    assert la is not None
    conc = Fraction(s.percent) * 10
    single_max = t.singles[(la.id, s.epinephrine)].max_mg
    room_single = (1 - t.sum_single) * Fraction(single_max) / conc
    daily_limit = t.daily.max_mg[la.id][0]
    per_ml_limit = daily_limit if daily_limit is not None else single_max
    room_24h = (1 - t.sum_24h) * Fraction(per_ml_limit) / conc
    room = max(Fraction(0), min(room_single, room_24h))
    return SolutionResult(
        agent=la.id,
        percent=s.percent,
        epinephrine=s.epinephrine,
        ml=s.ml,
        mg_per_ml=_exact(conc),
        mg=_exact(conc * Fraction(s.ml)),
        remaining_ml=round_down(room, 1),
    )


def _headline(t: _Totals) -> str:
    """The one-line verdict of the dose check."""
    pct = _pct(t.overall)
    return {
        "ok": f"Within every limit: {pct} of the combined maximum.",
        "caution": (
            f"Close to the limit: {pct} of the combined maximum (caution above "
            f"{_pct(t.caution)}). Use the lowest effective dose."
        ),
        "exceeds": (
            f"EXCEEDS the limit: {pct} of the combined maximum. Do not inject this as "
            "planned; reduce the volume or the strength."
        ),
    }[t.level]


def _reasons(t: _Totals, weight: WeightUsed, inj: Injectates, pre: str) -> list[Reason]:
    """Weight basis, each agent, each 24-hour sum, the mixture and the level, in that order."""
    reasons = [
        Reason(
            code="weight_basis",
            text=weight.reason,
            fields=[f"{pre}weight_kg"],
            statement_ids=DOSE_IDS,
        )
    ]
    reasons += [_agent_reason(key, t, weight) for key in t.groups]
    daily = [_daily_reason(aid, t, inj) for aid in t.daily.fraction]
    reasons += [r for r in [*daily, _mixture_reason(t, inj)] if r is not None]
    if t.ledger.expired:
        reasons.append(
            Reason(
                code="prior_not_counted",
                text="Earlier doses given at least "
                f"{_fmt(t.window_hours)} hours ago no longer count (clinic policy "
                f"prior_dose_window_hours): {', '.join(t.ledger.expired)}.",
                fields=t.ledger.expired,
                statement_ids=DOSE_IDS,
            )
        )
    reasons.append(
        Reason(
            code=f"level.{t.level}",
            text=_headline(t),
            fields=[f"{pre}solutions"],
            statement_ids=DOSE_IDS + (TOXICITY_IDS if t.level != "ok" else []),
        )
    )
    return reasons


def _mixture_rule(t: _Totals, inj: Injectates) -> MixtureRule:
    """The additive-toxicity convention with both sums."""
    mix = inj.mixture_convention
    return MixtureRule(
        convention=mix.id,
        name=mix.name,
        text=mix.text.strip(),
        fraction_single=round_up(t.sum_single, 4),
        fraction_24h=round_up(t.sum_24h, 4),
        limit=Decimal(1),
        references=list(mix.references),
        statement_ids=list(mix.statement_ids),
    )


def _toxicity(inj: Injectates) -> ToxicityWatch:
    """What to watch for: early and late signs of systemic toxicity and the response."""
    tox = inj.toxicity
    return ToxicityWatch(
        name=tox.name,
        early=list(tox.early),
        late=list(tox.late),
        response=tox.response.strip(),
        statement_ids=list(tox.statement_ids),
    )


def check_dose(
    request: DoseRequest,
    knowledge: Knowledge,
    *,
    policy: Policy = DEFAULT_POLICY,
    field_prefix: str = "",
) -> DoseCheck:
    """Check local anesthetic totals against every limit; raises ``InvalidInput`` on bad input.

    A total over a limit is a *result* (``level == "exceeds"``), never an exception.
    """
    inj = knowledge.injectates
    problems = validate_request(request, inj, policy, field_prefix)
    if problems:
        raise InvalidInput(problems)
    pre = f"{field_prefix}." if field_prefix else ""
    weight = weight_for_dosing(
        request.weight_kg, request.height_cm, request.sex, policy.dose_weight_basis, inj
    )
    t = _totals(request, inj, weight, policy, pre)
    return DoseCheck(
        level=t.level,
        headline=_headline(t),
        fraction=round_up(t.overall, 4),
        caution_fraction=policy.dose_caution_fraction,
        limit_source=policy.dose_limit_source,
        weight=weight,
        agents=[_agent_dose(key, t) for key in t.groups],
        daily=[_daily_dose(aid, t, inj) for aid in t.daily.fraction],
        solutions=[_solution_result(s, t, inj) for s in request.solutions],
        mixture=_mixture_rule(t, inj),
        reasons=_reasons(t, weight, inj, pre),
        toxicity=_toxicity(inj),
        knowledge_version=knowledge.version,
    )


def _pct(value: Fraction) -> str:
    """A fraction as a percentage, rounded up to 0.1% (never understated)."""
    return f"{_fmt(round_up(value * 100, 1))}%"
