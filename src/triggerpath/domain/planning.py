"""Procedure planning: a complete, checked plan for each target trigger point.

``plan_procedure`` is pure (``as_of`` is passed in). It first runs the
assessment engine: unless the verdict is ``tpi_appropriate`` the plan is
**refused** with the engine's reasons. Otherwise it builds, for each target,
the muscle's technique card (position, landmarks, needle, angle, guidance,
hazards, volume per site, aspiration, fanning), totals the injectate and runs
the dose check (:func:`triggerpath.domain.dosing.check_dose`). Its ``status``:

``refused``                the assessment does not support a TPI;
``blocked``                a total exceeds a limit, or another blocking issue
                           (unconfirmed target, steroid outside its indication …);
``needs_acknowledgement``  cautions (anticoagulant, dose near the limit …) are
                           not yet acknowledged in ``acknowledged_cautions``;
``ready``                  nothing stands in the way.

A plan whose dose check ``exceeds`` is never anything but ``blocked``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from triggerpath.domain.assessment import Assessment, Side
from triggerpath.domain.dosing import (
    MIN_ML,
    WEIGHT_KG_RANGE,
    DoseCheck,
    DoseRequest,
    Num,
    PriorDose,
    SolutionDose,
    check_dose,
    prior_problems,
    round_up,
    solution_problems,
)
from triggerpath.domain.engine import DISCLAIMER, assess, hazard_statement_ids
from triggerpath.domain.numbers import Quantity
from triggerpath.domain.policy import DEFAULT_POLICY, Policy
from triggerpath.domain.recommendation import (
    CarePlanItem,
    Caution,
    Coded,
    ExpectedCourse,
    Need,
    Reason,
    Recommendation,
    Verdict,
)
from triggerpath.domain.validation import check_ids, parse_input, unknown_muscle
from triggerpath.errors import FieldProblem, InvalidInput
from triggerpath.knowledge.conditions import evaluate
from triggerpath.knowledge.injectates import Corticosteroids, LocalAnesthetic
from triggerpath.knowledge.loader import Knowledge
from triggerpath.knowledge.schema import Muscle, TextItem

PlanStatus = Literal["refused", "blocked", "needs_acknowledgement", "ready"]
PLAN_STATUSES: tuple[PlanStatus, ...] = ("refused", "blocked", "needs_acknowledgement", "ready")
SteroidStatus = Literal["included", "available", "not_indicated", "blocked"]
MAX_ML_PER_SITE = Decimal(5)
MAX_PARTS = Decimal(100)
MAX_STEROID_MG = Decimal(200)
INADEQUATE = frozenset({"none", "partial"})
DOSE_NEAR_LIMIT = "dose_near_limit"


# --------------------------------------------------------------------------- input
class _In(BaseModel):
    """Input models are strict (see :mod:`triggerpath.domain.numbers` for the numbers)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Target(_In):
    """One muscle to inject."""

    muscle: str = Field(max_length=60, description="muscle id (triggerpath knowledge muscles)")
    side: Side
    sites: int = Field(
        default=1, ge=1, le=20, description="injection sites for this target, both sides together"
    )
    volume_ml_per_site: Quantity | None = Field(
        default=None,
        description="mL per site; default the muscle's upper volume (1 mL), so the dose check "
        "covers the most the plan allows",
    )


class InjectateSolution(_In):
    """A stock local anesthetic drawn into the mixture, in parts by volume."""

    agent: str = Field(min_length=1, max_length=60)
    percent: Quantity = Field(description="stock strength in % (1% = 10 mg/mL)")
    epinephrine: bool = False
    parts: Quantity = Field(default=Decimal(1), description="parts by volume in the mixture")


class Injectate(_In):
    solutions: list[InjectateSolution] = Field(min_length=1, max_length=4)
    saline_parts: Quantity = Field(
        default=Decimal(0), description="parts of preservative-free 0.9% saline (dilution)"
    )


class SteroidChoice(_In):
    agent: str = Field(
        max_length=60, description="triamcinolone, methylprednisolone or dexamethasone"
    )
    mg: Quantity = Field(description="total mg for the session")


class PlanRequest(_In):
    """A plan file: the assessment, the targets and the injectate choice."""

    assessment: Assessment
    targets: list[Target] = Field(min_length=1, max_length=20)
    injectate: Injectate
    prior_24h: list[PriorDose] = Field(
        default_factory=list,
        max_length=50,
        description="local anesthetic given in the last 24 hours",
    )
    acknowledged_cautions: list[Annotated[str, Field(max_length=80)]] = Field(
        default_factory=list,
        max_length=50,
        description="caution codes the clinician has considered",
    )
    steroid: SteroidChoice | None = None


# --------------------------------------------------------------------------- output
class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanIssue(Coded):
    blocking: bool
    fields: list[str] = Field(default_factory=list)
    statement_ids: list[str] = Field(min_length=1)


class Acknowledgements(_Out):
    required: list[str]
    acknowledged: list[str]
    missing: list[str]
    unmatched: list[str] = Field(description="acknowledged codes that match no caution")


class HazardNote(_Out):
    id: str
    name: str
    risk: str
    precaution: str
    statement_ids: list[str]
    references: list[str]


class Needle(_Out):
    gauge_min: int
    gauge_max: int
    length_mm_min: int
    length_mm_max: int
    text: str


class TechniqueCard(_Out):
    muscle: str
    name: str
    side: Side
    sites: int
    volume_ml_per_site: Num
    volume_ml: Num
    volume_range_ml: str
    position: str
    landmarks: str
    needle: Needle
    approach: str
    angle: str
    depth: str
    guidance: str
    hazards: list[HazardNote]
    steps: list[CarePlanItem]
    statement_ids: list[str]
    references: list[str]


class SolutionLine(_Out):
    agent: str
    name: str
    percent: Num
    epinephrine: bool
    parts: Num
    ml: Num = Field(description="volume of this stock solution drawn (rounded up to 0.0001 mL)")
    mg: Num
    onset: str
    duration: str
    preservative_free: list[str]


class InjectateSummary(_Out):
    solutions: list[SolutionLine]
    saline_parts: Num
    saline_ml: Num
    total_ml: Num
    mixture_mg_per_ml: dict[str, Num] = Field(description="per agent, in the final mixture")
    text: str
    statement_ids: list[str]


class SteroidPlan(_Out):
    status: SteroidStatus
    text: str
    agent: str | None = None
    name: str | None = None
    mg: Num | None = None
    range_mg: str
    caveat: str
    side_effects: str
    statement_ids: list[str]
    references: list[str]


class MaterialLine(_Out):
    code: str
    name: str
    statement_ids: list[str]


class Reassessment(_Out):
    earliest: date
    latest: date
    text: str
    statement_ids: list[str]


class ProcedurePlan(_Out):
    status: PlanStatus
    headline: str
    verdict: Verdict
    reasons: list[Reason]
    issues: list[PlanIssue]
    acknowledgements: Acknowledgements
    cautions: list[Caution]
    needs: list[Need]
    targets: list[TechniqueCard]
    injectate: InjectateSummary | None
    dose: DoseCheck | None
    steroid: SteroidPlan | None
    checklist: list[CarePlanItem]
    technique: list[CarePlanItem]
    materials: list[MaterialLine]
    expected_course: ExpectedCourse
    reassessment: Reassessment | None
    alternatives: list[CarePlanItem]
    knowledge_version: str
    as_of: date
    disclaimer: str


# --------------------------------------------------------------------------- parsing
def parse_plan_request(data: Any, kb: Knowledge) -> PlanRequest:
    """Validate a plan file into a ``PlanRequest`` or raise ``InvalidInput`` (all problems)."""
    return parse_input(
        PlanRequest, data, "plan", lambda r: check_ids(r.assessment, kb, prefix="assessment")
    )


def plan_json_schema(kb: Knowledge) -> dict[str, Any]:
    """JSON Schema of the plan file, with the knowledge base's ids as enums."""
    from triggerpath.domain.validation import assessment_json_schema

    schema = PlanRequest.model_json_schema()
    defs = schema.setdefault("$defs", {})
    for name, sub in assessment_json_schema(kb).get("$defs", {}).items():
        defs[name] = sub
    muscles = sorted(kb.muscles)
    agents = sorted(la.id for la in kb.injectates.local_anesthetics)
    defs["Target"]["properties"]["muscle"]["enum"] = muscles
    defs["InjectateSolution"]["properties"]["agent"]["enum"] = agents
    defs["PriorDose"]["properties"]["agent"]["enum"] = agents
    defs["SteroidChoice"]["properties"]["agent"]["enum"] = sorted(
        s.id for s in kb.injectates.corticosteroids.agents
    )
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://triggerpath.example/schemas/plan/{kb.version}"
    return schema


def _target_problems(targets: Sequence[Target], kb: Knowledge) -> list[FieldProblem]:
    """Unknown muscles and implausible volumes per site."""
    problems: list[FieldProblem] = []
    if not targets:
        problems.append(FieldProblem("targets", "at least one target muscle is needed"))
    for i, t in enumerate(targets):
        at = f"targets[{i}]"
        problems += unknown_muscle(f"{at}.muscle", t.muscle, kb)
        v = t.volume_ml_per_site
        if v is not None and (not v.is_finite() or v <= 0):
            problems.append(
                FieldProblem(f"{at}.volume_ml_per_site", "must be a volume of more than 0 mL")
            )
        elif v is not None and v < MIN_ML:
            problems.append(
                FieldProblem(
                    f"{at}.volume_ml_per_site",
                    f"{_fmt(v)} mL per site rounds to 0 at the {MIN_ML} mL a syringe measures",
                )
            )
        elif v is not None and v > MAX_ML_PER_SITE:
            problems.append(
                FieldProblem(
                    f"{at}.volume_ml_per_site",
                    f"{v} mL per site is not a trigger point volume (over {MAX_ML_PER_SITE} mL)",
                )
            )
    return problems


def _injectate_problems(
    injectate: Injectate, prior_24h: Sequence[PriorDose], kb: Knowledge, policy: Policy
) -> list[FieldProblem]:
    """Agents, strengths and parts of the mixture, and the 24-hour ledger."""
    inj = kb.injectates
    problems: list[FieldProblem] = []
    for i, s in enumerate(injectate.solutions):
        problems += solution_problems(
            s.agent, s.percent, s.epinephrine, inj, policy, f"injectate.solutions[{i}]"
        )
    problems += prior_problems(prior_24h, inj, "prior_24h")
    for i, s in enumerate(injectate.solutions):
        if not s.parts.is_finite() or s.parts <= 0 or s.parts > MAX_PARTS:
            problems.append(
                FieldProblem(
                    f"injectate.solutions[{i}].parts",
                    f"must be more than 0 and at most {MAX_PARTS}",
                )
            )
    sp = injectate.saline_parts
    if not sp.is_finite() or sp < 0 or sp > MAX_PARTS:
        problems.append(
            FieldProblem("injectate.saline_parts", f"must be between 0 and {MAX_PARTS}")
        )
    return problems


def _steroid_problems(steroid: SteroidChoice | None, kb: Knowledge) -> list[FieldProblem]:
    """An unknown corticosteroid or an implausible steroid dose."""
    inj = kb.injectates
    problems: list[FieldProblem] = []
    if steroid is None:
        return problems
    if inj.steroid(steroid.agent) is None:
        known = ", ".join(s.id for s in inj.corticosteroids.agents)
        problems.append(
            FieldProblem(
                "steroid.agent", f"unknown corticosteroid {steroid.agent!r}; known: {known}"
            )
        )
    if not steroid.mg.is_finite() or steroid.mg <= 0:
        problems.append(FieldProblem("steroid.mg", "must be a dose of more than 0 mg"))
    elif steroid.mg > MAX_STEROID_MG:
        problems.append(
            FieldProblem("steroid.mg", f"{steroid.mg} mg is not plausible; check the units")
        )
    return problems


def _input_problems(
    assessment: Assessment,
    targets: Sequence[Target],
    injectate: Injectate,
    prior_24h: Sequence[PriorDose],
    steroid: SteroidChoice | None,
    kb: Knowledge,
    policy: Policy,
) -> list[FieldProblem]:
    """Every problem with the plan's inputs, each naming its field."""
    return [
        *_target_problems(targets, kb),
        *_injectate_problems(injectate, prior_24h, kb, policy),
        *_steroid_problems(steroid, kb),
    ]


# --------------------------------------------------------------------------- helpers
def _item(t: TextItem) -> CarePlanItem:
    return CarePlanItem(
        code=t.id, title=t.title, text=t.text.strip(), statement_ids=list(t.statement_ids)
    )


def _confirmed(assessment: Assessment, kb: Knowledge) -> set[tuple[str, str]]:
    """(muscle, side) pairs whose trigger point meets the criteria."""
    req = kb.pathway.trigger_point_criteria.required
    out: set[tuple[str, str]] = set()
    for tp in assessment.trigger_points:
        if evaluate(req, tp.model_dump(mode="json")).value is True:
            out.add((tp.muscle, tp.side))
    return out


def _side_confirmed(muscle: str, side: Side, confirmed: set[tuple[str, str]]) -> bool:
    if (muscle, "bilateral") in confirmed:
        return True
    if side == "bilateral":
        return (muscle, "left") in confirmed and (muscle, "right") in confirmed
    return (muscle, side) in confirmed


def _needle(m: Muscle) -> Needle:
    n = m.needle
    gauge = f"{n.gauge_min} G" if n.gauge_min == n.gauge_max else f"{n.gauge_min}-{n.gauge_max} G"
    return Needle(**n.model_dump(), text=f"{gauge}, {n.length_mm_min}-{n.length_mm_max} mm")


#: What a technique card shows as the muscle's knowledge entry words it.
_FROM_MUSCLE = {"name", "position", "landmarks", "approach", "angle", "depth", "guidance"}
#: A knowledge item's sources, copied with what it says.
_SOURCES = {"statement_ids", "references"}


def _card(t: Target, volume: Decimal, kb: Knowledge) -> TechniqueCard:
    m = kb.muscles[t.muscle]
    inj = kb.injectates
    hazards = [
        HazardNote(
            **h.model_dump(include={"id", "name", "risk", "precaution", "references"}),
            statement_ids=hazard_statement_ids(h),
        )
        for h in (kb.hazards[hid] for hid in m.hazards)
    ]
    return TechniqueCard(
        **m.model_dump(include=_FROM_MUSCLE | _SOURCES),
        muscle=m.id,
        side=t.side,
        sites=t.sites,
        volume_ml_per_site=volume,
        volume_ml=volume * t.sites,
        volume_range_ml=f"{m.volume_ml_min:g}-{m.volume_ml_max:g} mL per site",
        needle=_needle(m),
        hazards=hazards,
        steps=[_item(inj.technique_item(i)) for i in ("aspiration", "fanning", "volume_per_site")],
    )


def _reassessment(as_of: date, kb: Knowledge) -> Reassessment:
    values = kb.statements["S003.12"].values
    lo, hi = int(values["reassess_weeks_min"]), int(values["reassess_weeks_max"])
    item = next(i for i in kb.pathway.follow_up if "S003.12" in i.statement_ids)
    return Reassessment(
        earliest=as_of + timedelta(weeks=lo),
        latest=as_of + timedelta(weeks=hi),
        text=f"Reassess between {lo} and {hi} weeks after this session. {item.text.strip()}",
        statement_ids=["S003.12"],
    )


def _steroid_allowed(assessment: Assessment) -> bool:
    """Persistent trigger points: earlier local anesthetic TPIs gave little or no relief."""
    return any(
        c.modality == "trigger_point_injection" and c.response in INADEQUATE
        for c in assessment.conservative_care or []
    )


def _fmt(value: Decimal) -> str:
    return format(value.normalize(), "f")


# --------------------------------------------------------------------------- the planner
def _alternatives(kb: Knowledge) -> list[CarePlanItem]:
    """Alternatives to injecting (dry needling, spray and stretch ...)."""
    return [
        CarePlanItem(
            code=a.id,
            title=a.name,
            text=f"{a.text.strip()} When: {a.when}.",
            statement_ids=list(a.statement_ids),
        )
        for a in kb.injectates.alternatives
    ]


def _common(rec: Recommendation, kb: Knowledge, as_of: date) -> dict[str, Any]:
    """The fields every plan carries from the assessment, whatever its status."""
    return {
        "verdict": rec.verdict,
        "cautions": rec.cautions,
        "needs": rec.needs,
        "expected_course": rec.expected_course,
        "alternatives": _alternatives(kb),
        "knowledge_version": kb.version,
        "as_of": as_of,
        "disclaimer": DISCLAIMER,
    }


def _refused(rec: Recommendation, acknowledged: list[str], common: dict[str, Any]) -> ProcedurePlan:
    """The plan when the assessment does not support a TPI: the engine's reasons, nothing else."""
    return ProcedurePlan(
        status="refused",
        headline=f"No TPI plan: the assessment is '{rec.verdict}'. {rec.headline}",
        reasons=rec.reasons,
        issues=[],
        acknowledgements=Acknowledgements(
            required=[], acknowledged=acknowledged, missing=[], unmatched=acknowledged
        ),
        targets=[],
        injectate=None,
        dose=None,
        steroid=None,
        checklist=[],
        technique=[],
        materials=[],
        reassessment=None,
        **common,
    )


def _dosing_weight(assessment: Assessment) -> Decimal:
    """The recorded weight, which dose limits need; refused when absent or implausible."""
    weight = assessment.patient.weight_kg
    if weight is None:
        raise InvalidInput.single(
            "assessment.patient.weight_kg",
            "needed to check the local anesthetic dose against weight-based limits",
        )
    lo, hi = WEIGHT_KG_RANGE
    if not lo <= weight <= hi:
        raise InvalidInput.single(
            "assessment.patient.weight_kg",
            f"{_fmt(weight)} kg is outside the adult range TriggerPath doses for ({lo}-{hi} kg)",
        )
    return weight


def _target_issues(
    i: int, t: Target, volume: Decimal, confirmed: bool, m: Muscle
) -> list[PlanIssue]:
    """An unconfirmed target, or a volume per site outside the muscle's range."""
    issues: list[PlanIssue] = []
    if not confirmed:
        issues.append(
            PlanIssue(
                code="target_not_confirmed",
                text=f"{m.name} ({t.side}) is not a trigger point confirmed in the "
                "assessment: inject only trigger points identified by palpation.",
                blocking=True,
                fields=[f"targets[{i}]"],
                statement_ids=["S003.11", "S002.10", "S000.09"],
            )
        )
    return issues + _volume_issues(i, volume, m)


def _volume_issues(i: int, volume: Decimal, m: Muscle) -> list[PlanIssue]:
    """A volume per site above the muscle's range (blocking) or below it (a failure risk)."""
    span = f"{m.volume_ml_min:g}-{m.volume_ml_max:g} mL"
    if volume > Decimal(str(m.volume_ml_max)):
        code, blocking, sids = "volume_above_range", True, ["S002.20", "S003.07"]
        where = f"above the {span} the sources describe."
    elif volume < Decimal(str(m.volume_ml_min)):
        code, blocking, sids = "volume_below_range", False, ["S002.20", "S004.02"]
        where = f"below the usual {span}; too little injectate is one cause of failed injections."
    else:
        return []
    text = f"{m.name}: {_fmt(volume)} mL per site is {where}"
    field = f"targets[{i}].volume_ml_per_site"
    return [PlanIssue(code=code, text=text, blocking=blocking, fields=[field], statement_ids=sids)]


def _duplicate_issues(targets: Sequence[Target], kb: Knowledge) -> list[PlanIssue]:
    """A muscle and side listed twice (both count in the totals)."""
    issues: list[PlanIssue] = []
    seen: dict[tuple[str, str], int] = {}
    for i, t in enumerate(targets):
        if (t.muscle, t.side) in seen:
            issues.append(
                PlanIssue(
                    code="duplicate_target",
                    text=f"{kb.muscles[t.muscle].name} ({t.side}) is listed twice; both are "
                    "counted in the totals.",
                    blocking=False,
                    fields=[f"targets[{seen[(t.muscle, t.side)]}]", f"targets[{i}]"],
                    statement_ids=["S003.07"],
                )
            )
        seen.setdefault((t.muscle, t.side), i)
    return issues


def _cards(
    assessment: Assessment, targets: Sequence[Target], kb: Knowledge
) -> tuple[list[TechniqueCard], list[PlanIssue]]:
    """A technique card per target, with the issues of each target."""
    confirmed = _confirmed(assessment, kb)
    cards: list[TechniqueCard] = []
    issues: list[PlanIssue] = []
    for i, t in enumerate(targets):
        m = kb.muscles[t.muscle]
        vmax = Decimal(str(m.volume_ml_max))
        volume = t.volume_ml_per_site if t.volume_ml_per_site is not None else vmax
        cards.append(_card(t, volume, kb))
        ok = _side_confirmed(t.muscle, t.side, confirmed)
        issues += _target_issues(i, t, volume, ok, m)
    return cards, issues + _duplicate_issues(targets, kb)


def _dose_lines(total: Decimal, injectate: Injectate) -> list[SolutionDose]:
    """Each stock solution's share of the total volume (rounded up: the check covers the most)."""
    parts = sum((s.parts for s in injectate.solutions), Decimal(0)) + injectate.saline_parts
    return [
        SolutionDose(
            agent=s.agent,
            percent=s.percent,
            ml=round_up(Fraction(total) * Fraction(s.parts) / Fraction(parts), 4),
            epinephrine=s.epinephrine,
        )
        for s in injectate.solutions
    ]


def _plan_field(problem: FieldProblem) -> FieldProblem:
    """A dose-check problem named by the plan field the user wrote (volumes come from parts)."""
    f = problem.field
    if f.startswith("solutions[") and f.endswith("].ml"):
        at = f"injectate.{f.removesuffix('.ml')}.parts"
        return FieldProblem(at, f"this solution's share of the volume: {problem.reason}")
    if f.startswith(("solutions", "prior_24h")):
        return FieldProblem(f if f.startswith("prior") else f"injectate.{f}", problem.reason)
    return FieldProblem(f"assessment.patient.{f}", problem.reason)


def _dose(
    assessment: Assessment,
    weight: Decimal,
    lines: list[SolutionDose],
    prior_24h: Sequence[PriorDose],
    kb: Knowledge,
    policy: Policy,
) -> tuple[DoseCheck, list[PlanIssue]]:
    """The dose check of the whole session; a total over a limit blocks the plan."""
    patient = assessment.patient
    request = DoseRequest(
        weight_kg=weight,
        height_cm=patient.height_cm,
        sex=patient.sex,
        solutions=lines,
        prior_24h=list(prior_24h),
    )
    try:
        dose = check_dose(request, kb, policy=policy)
    except InvalidInput as exc:
        raise InvalidInput([_plan_field(p) for p in exc.problems]) from None
    if dose.level != "exceeds":
        return dose, []
    issue = PlanIssue(
        code="dose_exceeds",
        text=f"{dose.headline} Remaining allowance is shown per solution.",
        blocking=True,
        fields=["targets", "injectate", "prior_24h"],
        statement_ids=["S000.28", "S000.29"],
    )
    return dose, [issue]


def _solution_line(
    i: int, s: InjectateSolution, d: SolutionDose, la: LocalAnesthetic, pf_needed: bool
) -> tuple[SolutionLine, list[PlanIssue]]:
    """One stock solution drawn, with its preservative-free forms (an issue when none)."""
    pf = [
        f.product + (f" ({f.note})" if f.note else "")
        for f in la.preservative_free
        if f.epinephrine == s.epinephrine and s.percent in f.percents
    ]
    issues: list[PlanIssue] = []
    if pf_needed and not pf:
        issues.append(
            PlanIssue(
                code="no_preservative_free_form",
                text=f"A preservative allergy is recorded and {la.name.lower()} "
                f"{_fmt(s.percent)}%{' with epinephrine' if s.epinephrine else ''} has no "
                "preservative-free presentation: choose another strength or agent.",
                blocking=True,
                fields=[f"injectate.solutions[{i}]", "assessment.contraindications"],
                statement_ids=["S000.30"],
            )
        )
    duration = la.duration.plain
    if s.epinephrine:
        duration = la.duration.epinephrine or la.duration.plain
    line = SolutionLine(
        **s.model_dump(include={"percent", "epinephrine", "parts"}),  # the solution as chosen
        agent=la.id,
        name=la.name,
        ml=d.ml,
        mg=s.percent * 10 * d.ml,
        onset=la.onset,
        duration=duration,
        preservative_free=pf or [la.preservative_note],
    )
    return line, issues


def _injectate_summary(
    assessment: Assessment,
    injectate: Injectate,
    lines: list[SolutionDose],
    cards: list[TechniqueCard],
    kb: Knowledge,
) -> tuple[InjectateSummary, list[PlanIssue]]:
    """What to draw up: each stock solution, the saline and the final mixture's strength."""
    total = sum((c.volume_ml for c in cards), Decimal(0))
    parts = sum((s.parts for s in injectate.solutions), Decimal(0)) + injectate.saline_parts
    pf_needed = assessment.contraindications.preservative_allergy is True
    solution_lines: list[SolutionLine] = []
    issues: list[PlanIssue] = []
    mixture: dict[str, Decimal] = {}
    for i, (s, d) in enumerate(zip(injectate.solutions, lines, strict=True)):
        la = kb.injectates.agent(s.agent)
        assert la is not None
        line, line_issues = _solution_line(i, s, d, la, pf_needed)
        solution_lines.append(line)
        issues += line_issues
        conc = Fraction(s.percent) * 10 * Fraction(s.parts) / Fraction(parts)
        mixture[la.id] = mixture.get(la.id, Decimal(0)) + round_up(conc, 4)
    saline_ml = round_up(Fraction(total) * Fraction(injectate.saline_parts) / Fraction(parts), 4)
    names = {line.agent: line.name for line in solution_lines}
    mix_text = ", ".join(f"{names[a]} {_fmt(v)} mg/mL" for a, v in mixture.items())
    summary = InjectateSummary(
        solutions=solution_lines,
        saline_parts=injectate.saline_parts,
        saline_ml=saline_ml,
        total_ml=total,
        mixture_mg_per_ml=mixture,
        text=f"{_fmt(total)} mL in total over {sum(c.sites for c in cards)} site(s); "
        f"final mixture {mix_text}"
        + (f", diluted with {_fmt(saline_ml)} mL saline" if injectate.saline_parts else "")
        + ".",
        statement_ids=["S000.15", "S003.07", "S002.18", "S000.28"],
    )
    return summary, issues


def _steroid_base(cs: Corticosteroids) -> dict[str, Any]:
    """The corticosteroid text every steroid plan carries (range, caveat, side effects)."""
    return {
        "range_mg": f"{_fmt(cs.dose_mg_min)}-{_fmt(cs.dose_mg_max)} mg",
        "caveat": cs.caveat.strip(),
        "side_effects": cs.side_effects.strip(),
        "statement_ids": list(cs.statement_ids),
        "references": list(cs.references),
    }


def _steroid_issues(
    steroid: SteroidChoice, allowed: bool, name: str, cs: Corticosteroids
) -> list[PlanIssue]:
    """A steroid outside its indication or outside the source's dose range."""
    range_mg = f"{_fmt(cs.dose_mg_min)}-{_fmt(cs.dose_mg_max)} mg"
    issues: list[PlanIssue] = []
    if not allowed:
        issues.append(
            PlanIssue(
                code="steroid_not_indicated",
                text="A corticosteroid is requested, but the assessment records no earlier "
                "local anesthetic TPIs that failed: steroids are for persistent trigger "
                "points that did not respond to other treatment. Remove it or record the "
                "earlier injections.",
                blocking=True,
                fields=["steroid", "assessment.conservative_care"],
                statement_ids=["S003.09", "S004.02"],
            )
        )
    if steroid.mg > cs.dose_mg_max:
        issues.append(
            PlanIssue(
                code="steroid_dose_above_range",
                text=f"{_fmt(steroid.mg)} mg {name.lower()} is above the "
                f"{range_mg} the source gives.",
                blocking=True,
                fields=["steroid.mg"],
                statement_ids=["S003.09"],
            )
        )
    elif steroid.mg < cs.dose_mg_min:
        issues.append(
            PlanIssue(
                code="steroid_dose_below_range",
                text=f"{_fmt(steroid.mg)} mg is below the {range_mg} the source gives.",
                blocking=False,
                fields=["steroid.mg"],
                statement_ids=["S003.09"],
            )
        )
    return issues


def _steroid_plan(
    steroid: SteroidChoice | None, assessment: Assessment, kb: Knowledge
) -> tuple[SteroidPlan, list[PlanIssue]]:
    """Whether a corticosteroid is available, included or blocked, and why."""
    cs = kb.injectates.corticosteroids
    allowed = _steroid_allowed(assessment)
    base = _steroid_base(cs)
    range_mg = base["range_mg"]
    if steroid is None:
        text = (
            f"A corticosteroid ({range_mg} by the size of the area) may be added: earlier "
            "local anesthetic injections gave little or no relief."
            if allowed
            else "No corticosteroid: it is reserved for persistent trigger points that did "
            "not respond to other treatment, including local anesthetic injections."
        )
        return SteroidPlan(
            status="available" if allowed else "not_indicated", text=text, **base
        ), []
    agent = kb.injectates.steroid(steroid.agent)
    assert agent is not None
    issues = _steroid_issues(steroid, allowed, agent.name, cs)
    blocked = any(i.blocking for i in issues)
    plan = SteroidPlan(
        status="blocked" if blocked else "included",
        text=f"{agent.name}, {_fmt(steroid.mg)} mg in total ({range_mg} by the size of the "
        f"area). {agent.note}",
        agent=agent.id,
        name=agent.name,
        mg=steroid.mg,
        **base,
    )
    return plan, issues


def _acknowledgements(
    rec: Recommendation, dose: DoseCheck, acknowledged: list[str]
) -> Acknowledgements:
    """The cautions the clinician must acknowledge, and which still are not."""
    required = [c.code for c in rec.cautions if not c.code.startswith("hazard.")]
    if dose.level == "caution":
        required.append(DOSE_NEAR_LIMIT)
    required = list(dict.fromkeys(required))
    return Acknowledgements(
        required=required,
        acknowledged=[c for c in acknowledged if c in required],
        missing=[c for c in required if c not in acknowledged],
        unmatched=[c for c in acknowledged if c not in required],
    )


def _materials(
    cards: list[TechniqueCard], injectate: Injectate, steroid_plan: SteroidPlan, kb: Knowledge
) -> list[MaterialLine]:
    """Materials for this session, and the needles each muscle needs."""
    needs_us = any(c.guidance != "palpation" for c in cards)
    materials: list[MaterialLine] = []
    for mat in kb.injectates.materials:
        wanted = {
            "always": True,
            "ultrasound": needs_us,
            "diluent": injectate.saline_parts > 0,
            "steroid": steroid_plan.status == "included",
        }[mat.when]
        if wanted:
            materials.append(
                MaterialLine(code=mat.id, name=mat.name, statement_ids=list(mat.statement_ids))
            )
    needles: dict[str, list[str]] = {}
    for c in cards:
        needles.setdefault(c.needle.text, []).append(c.name)
    for text, muscles in needles.items():
        materials.append(
            MaterialLine(
                code="needle",
                name=f"Needles {text} ({', '.join(dict.fromkeys(muscles))})",
                statement_ids=["S002.18", "S003.07"] + (["S000.16"] if "60" in text else []),
            )
        )
    return materials


def _status(
    issues: list[PlanIssue],
    acks: Acknowledgements,
    rec: Recommendation,
    dose: DoseCheck,
    cards: list[TechniqueCard],
    total: Decimal,
) -> tuple[PlanStatus, str, list[Reason]]:
    """Blocked, needs acknowledgement or ready: the status, its headline and reasons."""
    blocking = [i for i in issues if i.blocking]
    if blocking:
        reasons = [
            Reason(code=i.code, text=i.text, fields=i.fields, statement_ids=i.statement_ids)
            for i in blocking
        ]
        return "blocked", f"Plan blocked: {blocking[0].text}", reasons
    if acks.missing:
        texts = {c.code: c.text for c in rec.cautions}
        texts[DOSE_NEAR_LIMIT] = dose.headline
        reasons = [
            Reason(
                code=f"acknowledge.{code}",
                text=f"Acknowledge '{code}': {texts.get(code, code)}",
                fields=["acknowledged_cautions"],
                statement_ids=next(
                    (c.statement_ids for c in rec.cautions if c.code == code), ["S000.28"]
                ),
            )
            for code in acks.missing
        ]
        headline = (
            f"Plan needs acknowledgement of {len(acks.missing)} caution(s): "
            f"{', '.join(acks.missing)}."
        )
        return "needs_acknowledgement", headline, reasons
    headline = (
        f"Plan ready: {len(cards)} target(s), {_fmt(total)} mL; dose {dose.level} "
        f"({_fmt(dose.fraction * 100)}% of the combined maximum)."
    )
    return "ready", headline, rec.reasons


def plan_procedure(
    assessment: Assessment,
    targets: Sequence[Target],
    injectate: Injectate,
    *,
    as_of: date,
    policy: Policy = DEFAULT_POLICY,
    knowledge: Knowledge,
    prior_24h: Sequence[PriorDose] = (),
    acknowledged_cautions: Sequence[str] = (),
    steroid: SteroidChoice | None = None,
) -> ProcedurePlan:
    """Plan TPIs for each target; raises ``InvalidInput`` on bad input, never on findings.

    ``assessment`` must already be validated against ``knowledge``
    (:func:`parse_plan_request` or :func:`triggerpath.domain.validation.parse_assessment`).
    """
    kb = knowledge
    problems = _input_problems(assessment, targets, injectate, prior_24h, steroid, kb, policy)
    if problems:
        raise InvalidInput(problems)
    rec = assess(assessment, kb, as_of=as_of, policy=policy)
    acknowledged = list(dict.fromkeys(acknowledged_cautions))
    common = _common(rec, kb, as_of)
    if rec.verdict != "tpi_appropriate":
        return _refused(rec, acknowledged, common)
    weight = _dosing_weight(assessment)
    cards, issues = _cards(assessment, targets, kb)
    total = sum((c.volume_ml for c in cards), Decimal(0))
    lines = _dose_lines(total, injectate)
    dose, dose_issues = _dose(assessment, weight, lines, prior_24h, kb, policy)
    summary, summary_issues = _injectate_summary(assessment, injectate, lines, cards, kb)
    steroid_plan, steroid_issues = _steroid_plan(steroid, assessment, kb)
    issues += dose_issues + summary_issues + steroid_issues
    acks = _acknowledgements(rec, dose, acknowledged)
    status, headline, reasons = _status(issues, acks, rec, dose, cards, total)
    return ProcedurePlan(
        status=status,
        headline=headline,
        reasons=reasons,
        issues=issues,
        acknowledgements=acks,
        targets=cards,
        injectate=summary,
        dose=dose,
        steroid=steroid_plan,
        checklist=[_item(t) for t in kb.injectates.checklist],
        technique=[_item(t) for t in kb.injectates.technique],
        materials=_materials(cards, injectate, steroid_plan, kb),
        reassessment=_reassessment(as_of, kb),
        **common,
    )


def plan_from_request(
    request: PlanRequest, knowledge: Knowledge, *, as_of: date, policy: Policy = DEFAULT_POLICY
) -> ProcedurePlan:
    """Plan from a parsed plan file (see :func:`parse_plan_request`)."""
    return plan_procedure(
        request.assessment,
        request.targets,
        request.injectate,
        as_of=as_of,
        policy=policy,
        knowledge=knowledge,
        prior_24h=request.prior_24h,
        acknowledged_cautions=request.acknowledged_cautions,
        steroid=request.steroid,
    )
