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

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, ValidationError

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
MAX_PRIOR_MG = Decimal(10000)
DOSE_IDS = ["S000.28"]
TOXICITY_IDS = ["S000.29"]


def _num(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


#: A Decimal that JSON renders as a number (exact in Python, a plain number in JSON).
Num = Annotated[Decimal, PlainSerializer(_num, return_type=int | float, when_used="json")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SolutionDose(_In):
    """One local anesthetic solution drawn for this procedure."""

    agent: str = Field(
        min_length=1, max_length=60, description="lidocaine, bupivacaine, ropivacaine, mepivacaine"
    )
    percent: Decimal = Field(description="strength in % (1% = 10 mg/mL)")
    ml: Decimal = Field(description="volume of this solution in mL")
    epinephrine: bool = Field(default=False, description="solution contains epinephrine")


class PriorDose(_In):
    """A local anesthetic dose already given in the last 24 hours."""

    agent: str = Field(min_length=1, max_length=60)
    mg: Decimal = Field(description="milligrams given")


class DoseRequest(_In):
    weight_kg: Decimal = Field(description="actual body weight in kg")
    height_cm: Decimal | None = Field(default=None, description="needed for ideal or lean weight")
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
    from triggerpath.domain.validation import problems_from

    if not isinstance(data, dict):
        raise InvalidInput.single("(root)", "expected a JSON object with the dose request")
    try:
        return DoseRequest.model_validate(data)
    except ValidationError as err:
        raise InvalidInput(problems_from(err)) from None


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


def check_dose(  # noqa: C901, PLR0915  (KNOWN_LONG)
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
    caution = Fraction(policy.dose_caution_fraction)
    source = policy.dose_limit_source
    weight = weight_for_dosing(
        request.weight_kg, request.height_cm, request.sex, policy.dose_weight_basis, inj
    )

    # ---- this procedure, per agent and form
    groups: dict[tuple[str, bool], _Group] = {}
    for i, s in enumerate(request.solutions):
        la = inj.agent(s.agent)
        assert la is not None
        g = groups.setdefault((la.id, s.epinephrine), _Group(la, s.epinephrine, Fraction(0), []))
        g.mg += Fraction(s.percent) * 10 * Fraction(s.ml)
        g.fields.append(f"{pre}solutions[{i}]")
    singles: dict[tuple[str, bool], SingleLimit] = {
        key: single_limit(g.la.form_limits(g.epinephrine), weight.kg, source)
        for key, g in groups.items()
    }
    frac_single = {key: g.mg / Fraction(singles[key].max_mg) for key, g in groups.items()}

    # ---- 24 hours, per agent
    prior: dict[str, Fraction] = {}
    prior_fields: dict[str, list[str]] = {}
    for i, p in enumerate(request.prior_24h):
        la = inj.agent(p.agent)
        assert la is not None
        prior[la.id] = prior.get(la.id, Fraction(0)) + Fraction(p.mg)
        prior_fields.setdefault(la.id, []).append(f"{pre}prior_24h[{i}]")
    agents_24h = list(dict.fromkeys([*(g.la.id for g in groups.values()), *prior]))
    # labelled: (earlier + now) / 24-hour maximum. Unlabelled (TriggerPath convention): earlier
    # doses count against the lowest single-dose maximum of the forms in play (their form is
    # not recorded), today's doses against their own form's maximum.
    daily_max: dict[str, tuple[Decimal | None, str]] = {}
    prior_limit: dict[str, Decimal] = {}
    now_mg: dict[str, Fraction] = {}
    frac_24h: dict[str, Fraction] = {}
    for aid in agents_24h:
        la = inj.agent(aid)
        assert la is not None
        now_mg[aid] = sum((g.mg for g in groups.values() if g.la.id == aid), Fraction(0))
        earlier = prior.get(aid, Fraction(0))
        picked = _pick([(d.max_mg, d.source) for d in la.limits_24h], source)
        if picked.value is not None and picked.source is not None:
            daily_max[aid] = (picked.value, picked.source)
            prior_limit[aid] = picked.value
            frac_24h[aid] = (earlier + now_mg[aid]) / Fraction(picked.value)
        else:
            forms = [k for k in singles if k[0] == aid]
            prior_limit[aid] = min(
                [singles[k].max_mg for k in forms]
                or [single_limit(la.form_limits(False), weight.kg, source).max_mg]
            )
            daily_max[aid] = (None, inj.unlabelled_24h_rule.id)
            frac_24h[aid] = earlier / Fraction(prior_limit[aid]) + sum(
                (frac_single[k] for k in forms), Fraction(0)
            )

    sum_single = sum(frac_single.values(), Fraction(0))
    sum_24h = sum(frac_24h.values(), Fraction(0))
    overall = max(sum_single, sum_24h)
    level = _level(overall, caution)

    # ---- per agent figures
    agents: list[AgentDose] = []
    reasons: list[Reason] = [
        Reason(
            code="weight_basis",
            text=weight.reason,
            fields=[f"{pre}weight_kg"],
            statement_ids=DOSE_IDS,
        )
    ]
    for key, g in groups.items():
        lim = singles[key]
        entries = g.la.form_limits(g.epinephrine)
        form = "with epinephrine" if g.epinephrine else "plain"
        mg = _exact(g.mg)
        fr = frac_single[key]
        agents.append(
            AgentDose(
                agent=g.la.id,
                name=g.la.name,
                epinephrine=g.epinephrine,
                mg=mg,
                max_mg=lim.max_mg,
                limited_by=lim.limited_by,
                mg_per_kg=lim.mg_per_kg.value,
                mg_per_kg_source=lim.mg_per_kg.source,
                weight_limit_mg=lim.weight_limit,
                cap_mg=lim.cap.value,
                cap_source=lim.cap.source,
                fraction=round_up(fr, 4),
                level=_level(max(fr, frac_24h[g.la.id]), caution),
                sources=_sources(entries),
                source_range=_source_range(entries),
            )
        )
        how = []
        if lim.weight_limit is not None:
            how.append(
                f"{_fmt(lim.mg_per_kg.value or Decimal(0))} mg/kg x {_fmt(weight.kg)} kg = "
                f"{_fmt(lim.weight_limit)} mg [{lim.mg_per_kg.source}]"
            )
        if lim.cap.value is not None:
            how.append(f"cap {_fmt(lim.cap.value)} mg [{lim.cap.source}]")
        reasons.append(
            Reason(
                code=f"agent.{g.la.id}.{'epinephrine' if g.epinephrine else 'plain'}",
                text=(
                    f"{g.la.name} {form}: {_fmt(mg)} mg now; maximum {_fmt(lim.max_mg)} mg "
                    f"(lower of {' and '.join(how)}); {_pct(fr)} of it. Sources: "
                    f"{_source_range(entries)}."
                ),
                fields=g.fields,
                statement_ids=DOSE_IDS,
            )
        )
    daily: list[DailyDose] = []
    for aid in agents_24h:
        la = inj.agent(aid)
        assert la is not None
        mx, src = daily_max[aid]
        limit_text = f"{_fmt(mx)} mg" if mx is not None else "the single-dose maximum"
        total = prior.get(aid, Fraction(0)) + now_mg[aid]
        fr = frac_24h[aid]
        daily.append(
            DailyDose(
                agent=aid,
                name=la.name,
                prior_mg=_exact(prior.get(aid, Fraction(0))),
                now_mg=_exact(now_mg[aid]),
                total_mg=_exact(total),
                max_mg=mx,
                max_source=src,
                prior_limit_mg=prior_limit[aid],
                fraction=round_up(fr, 4),
                level=_level(fr, caution),
                sources=[
                    SourceValue(
                        source=d.source, mg_per_kg=None, max_mg=d.max_mg, reference=d.reference
                    )
                    for d in la.limits_24h
                ],
            )
        )
        if aid in prior or la.limits_24h:
            rule = (
                f"no source gives a 24-hour maximum, so earlier doses count against the "
                f"single-dose maximum of {_fmt(prior_limit[aid])} mg (TriggerPath convention)"
                if src == inj.unlabelled_24h_rule.id
                else f"24-hour maximum [{src}]"
            )
            reasons.append(
                Reason(
                    code=f"daily.{aid}",
                    text=(
                        f"{la.name} over 24 hours: {_fmt(_exact(prior.get(aid, Fraction(0))))} mg "
                        f"earlier + {_fmt(_exact(now_mg[aid]))} mg now = {_fmt(_exact(total))} mg "
                        f"against {limit_text} ({rule}); {_pct(fr)} of the allowance."
                    ),
                    fields=prior_fields.get(aid, [])
                    + [f for g in groups.values() if g.la.id == aid for f in g.fields],
                    statement_ids=DOSE_IDS,
                )
            )
    mix = inj.mixture_convention
    if len(groups) + len([a for a in prior if a not in {g.la.id for g in groups.values()}]) > 1:
        reasons.append(
            Reason(
                code="mixture",
                text=(
                    f"{mix.name}: this procedure "
                    + " + ".join(_pct(f) for f in frac_single.values())
                    + f" = {_pct(sum_single)}; over 24 hours "
                    + " + ".join(_pct(f) for f in frac_24h.values())
                    + f" = {_pct(sum_24h)} of the combined maximum."
                ),
                fields=[f for g in groups.values() for f in g.fields],
                statement_ids=list(mix.statement_ids),
            )
        )

    # ---- remaining allowance per solution
    solutions: list[SolutionResult] = []
    for s in request.solutions:
        la = inj.agent(s.agent)
        assert la is not None
        conc = Fraction(s.percent) * 10
        room_single = (1 - sum_single) * Fraction(singles[(la.id, s.epinephrine)].max_mg) / conc
        daily_limit = daily_max[la.id][0]
        per_ml_limit = (
            daily_limit if daily_limit is not None else singles[(la.id, s.epinephrine)].max_mg
        )
        room_24h = (1 - sum_24h) * Fraction(per_ml_limit) / conc
        room = max(Fraction(0), min(room_single, room_24h))
        solutions.append(
            SolutionResult(
                agent=la.id,
                percent=s.percent,
                epinephrine=s.epinephrine,
                ml=s.ml,
                mg_per_ml=_exact(conc),
                mg=_exact(conc * Fraction(s.ml)),
                remaining_ml=round_down(room, 1),
            )
        )

    pct = _pct(overall)
    headline = {
        "ok": f"Within every limit: {pct} of the combined maximum.",
        "caution": (
            f"Close to the limit: {pct} of the combined maximum (caution above "
            f"{_pct(caution)}). Use the lowest effective dose."
        ),
        "exceeds": (
            f"EXCEEDS the limit: {pct} of the combined maximum. Do not inject this as "
            "planned; reduce the volume or the strength."
        ),
    }[level]
    reasons.append(
        Reason(
            code=f"level.{level}",
            text=headline,
            fields=[f"{pre}solutions"],
            statement_ids=DOSE_IDS + (TOXICITY_IDS if level != "ok" else []),
        )
    )
    tox = inj.toxicity
    return DoseCheck(
        level=level,
        headline=headline,
        fraction=round_up(overall, 4),
        caution_fraction=policy.dose_caution_fraction,
        limit_source=source,
        weight=weight,
        agents=agents,
        daily=daily,
        solutions=solutions,
        mixture=MixtureRule(
            convention=mix.id,
            name=mix.name,
            text=mix.text.strip(),
            fraction_single=round_up(sum_single, 4),
            fraction_24h=round_up(sum_24h, 4),
            limit=Decimal(1),
            references=list(mix.references),
            statement_ids=list(mix.statement_ids),
        ),
        reasons=reasons,
        toxicity=ToxicityWatch(
            name=tox.name,
            early=list(tox.early),
            late=list(tox.late),
            response=tox.response.strip(),
            statement_ids=list(tox.statement_ids),
        ),
        knowledge_version=knowledge.version,
    )


def _pct(value: Fraction) -> str:
    """A fraction as a percentage, rounded up to 0.1% (never understated)."""
    return f"{_fmt(round_up(value * 100, 1))}%"
