"""Schema of ``instruments.yaml``: outcome instruments, response rules, course rules, re-evaluation.

Everything the treatment-course logic needs to know is data here:

- each outcome instrument (NRS, PEG, ODI, NDI, STarT Back): its items and answer ranges,
  the scoring rule, the missing-item rule, the bands or risk groups with their cut-offs and
  the publication they come from;
- the IMMPACT thresholds for a meaningful change in pain and the response classes;
- the course rules (session limits, reassessment, monotherapy, long-term use, conservative
  care), each citing the source statements;
- the re-evaluation worksheet for when TPIs fail (technical review, perpetuating factors,
  failure risk factors, differential diagnosis with its work-up, alternative pathways) and
  the radiofrequency ablation rules a clinic can choose between.

The scoring arithmetic itself lives in :mod:`triggerpath.domain.scoring`; it reads the
numbers (ranges, cut-offs, missing-item limits) from these models.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, get_args

from pydantic import Field, model_validator

from triggerpath.errors import FieldProblem
from triggerpath.knowledge.base import Strict, by_id
from triggerpath.knowledge.conditions import Condition, paths_in
from triggerpath.knowledge.schema import Cited, ItemId, Region, duplicate_ids
from triggerpath.knowledge.vocabulary import REGENERATE, InputVocabulary

InstrumentId = Literal["nrs", "peg", "odi", "ndi", "startback"]
INSTRUMENT_IDS: tuple[InstrumentId, ...] = ("nrs", "peg", "odi", "ndi", "startback")
ScoringKind = Literal["single", "mean", "percent_of_answered", "startback"]
ResponseClass = Literal["responder", "partial", "non_responder", "relief_too_short"]
RESPONSE_CLASSES: tuple[ResponseClass, ...] = (
    "responder",
    "partial",
    "non_responder",
    "relief_too_short",
)
RfaRule = Literal["seed_50", "dual_block_80"]


# --------------------------------------------------------------------------- instruments
class InstrumentItem(Strict):
    number: int = Field(ge=1, le=20)
    label: str  # TriggerPath's short paraphrase of what the item asks, never the wording
    min: int = Field(ge=0)
    max: int = Field(ge=1)
    anchors: list[str] = Field(
        default_factory=list, description="meaning of each answer value, min to max"
    )
    positive_values: list[int] = Field(
        default_factory=list,
        description="(STarT Back) the answer values that score 1; the others score 0",
    )

    @model_validator(mode="after")
    def _consistent(self) -> InstrumentItem:
        if self.min >= self.max:
            raise ValueError("min must be below max")
        if self.anchors and len(self.anchors) != self.max - self.min + 1:
            raise ValueError("anchors need one label per answer value")
        if any(v < self.min or v > self.max for v in self.positive_values):
            raise ValueError("positive_values must lie within min..max")
        return self


class MissingRule(Strict):
    """What happens when items are left blank."""

    max_missing: int = Field(ge=0)
    method: Literal["refuse", "percent_of_answered"]
    text: str


class Band(Strict):
    """A severity band; it holds every value from ``min`` up to the next band's ``min``."""

    id: ItemId
    name: str
    min: float
    label: str  # the published range, e.g. "0-20%"


class Subscale(Strict):
    id: ItemId
    name: str
    items: list[int] = Field(min_length=1)


class RiskGroup(Strict):
    id: ItemId
    name: str
    rule: str
    matched_care: str


class StartBackRule(Strict):
    """Keele STarT Back risk rule (Hill 2008): the two cut-offs as data."""

    total_min_not_low: int = Field(ge=1, description="total at or above this: not low risk")
    subscale: ItemId
    subscale_min_high: int = Field(ge=1, description="subscale at or above this: high risk")


class Instrument(Cited):
    id: InstrumentId
    name: str
    version: str
    measures: str
    regions: list[Region] = Field(default_factory=list, description="empty: any back region")
    items: list[InstrumentItem] = Field(min_length=1)
    scoring: ScoringKind
    scoring_text: str
    unit: str
    score_min: float
    score_max: float
    missing: MissingRule
    band_basis: Literal["score", "raw"] = "score"
    bands: list[Band] = Field(default_factory=list)
    bands_note: str = ""
    subscales: list[Subscale] = Field(default_factory=list)
    risk_rule: StartBackRule | None = None
    risk_groups: list[RiskGroup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Instrument:
        numbers = [i.number for i in self.items]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError("items must be numbered 1..n in order")
        mins = [b.min for b in self.bands]
        if mins != sorted(mins) or len(set(mins)) != len(mins):
            raise ValueError("bands must be in increasing order of min")
        for s in self.subscales:
            if any(n < 1 or n > len(self.items) for n in s.items):
                raise ValueError(f"subscale {s.id} names an item that does not exist")
        if self.scoring == "startback":
            if self.risk_rule is None or not self.risk_groups:
                raise ValueError("STarT Back scoring needs risk_rule and risk_groups")
            if self.risk_rule.subscale not in {s.id for s in self.subscales}:
                raise ValueError("risk_rule.subscale must name a subscale")
            if {g.id for g in self.risk_groups} != {"low", "medium", "high"}:
                raise ValueError("risk groups must be low, medium and high")
            if any(not i.positive_values for i in self.items):
                raise ValueError("every STarT Back item needs positive_values")
        if self.scoring == "single" and len(self.items) != 1:
            raise ValueError("a single-item instrument has exactly one item")
        if self.missing.method == "refuse" and self.missing.max_missing != 0:
            raise ValueError("method refuse means max_missing 0")
        return self


# --------------------------------------------------------------------------- response
class ResponseThresholds(Cited):
    """IMMPACT thresholds for a clinically meaningful reduction of pain intensity."""

    moderate_pct: float = Field(gt=0, lt=100)
    substantial_pct: float = Field(gt=0, lt=100)
    points: float = Field(gt=0, le=10)
    text: str

    @model_validator(mode="after")
    def _ordered(self) -> ResponseThresholds:
        if self.moderate_pct >= self.substantial_pct:
            raise ValueError("moderate_pct must be below substantial_pct")
        return self


class ResponseClassRule(Cited):
    id: ResponseClass
    name: str
    rule: str
    meaning: str


class Response(Strict):
    thresholds: ResponseThresholds
    classes: list[ResponseClassRule]
    course_rule: str

    @model_validator(mode="after")
    def _all_classes(self) -> Response:
        if sorted(c.id for c in self.classes) != sorted(RESPONSE_CLASSES):
            raise ValueError(f"need each response class once: {', '.join(RESPONSE_CLASSES)}")
        return self


# --------------------------------------------------------------------------- course
CourseRuleId = Literal[
    "assessment_not_tpi",
    "phase_unknown",
    "session_limit_near",
    "session_limit_reached",
    "session_limit_exceeded",
    "plan_exceeds_limit",
    "reassessment_upcoming",
    "reassessment_due",
    "reassessment_overdue",
    "reassessment_done",
    "monotherapy",
    "conservative_care_lapsed",
    "continue_conservative_care",
    "long_term_repeated_tpis",
    "complication_serious",
    "complication_expected",
    "instrument_region",
    "reevaluate",
]
COURSE_RULE_IDS: tuple[str, ...] = get_args(CourseRuleId)


class CourseRule(Cited):
    id: CourseRuleId
    level: Literal["info", "warning"]
    title: str
    text: str
    action: str


class Reassessment(Cited):
    weeks_min: float = Field(gt=0)
    weeks_max: float = Field(gt=0)
    text: str


class Complication(Cited):
    id: ItemId
    name: str
    serious: bool
    action: str


# --------------------------------------------------------------------------- re-evaluation
class CheckItem(Cited):
    """One line of the worksheet: what to look at and why."""

    id: ItemId
    title: str
    check: str
    when: Condition | None = None  # flagged when true on the assessment


class Differential(Cited):
    id: ItemId
    name: str
    regions: list[Region] = Field(default_factory=list, description="empty: every region")
    features: str
    when: Condition | None = None  # suspected when true on the assessment
    workup: list[str] = Field(min_length=1)
    treatment: str


class Alternative(Cited):
    id: ItemId
    name: str
    text: str
    medication_classes: list[ItemId] = Field(default_factory=list)


class AblationRule(Cited):
    id: RfaRule
    name: str
    threshold_pct: float = Field(gt=0, le=100)
    inclusive: bool  # True: relief >= threshold counts; False: strictly greater
    blocks_required: int = Field(ge=1, le=3)
    text: str


class Reevaluation(Cited):
    title: str
    text: str
    technical_review: list[CheckItem] = Field(min_length=1)
    perpetuating_factors: list[CheckItem] = Field(min_length=1)
    failure_risk_factors: list[CheckItem] = Field(min_length=1)
    differential: list[Differential] = Field(min_length=1)
    alternatives: list[Alternative] = Field(min_length=1)


class Instruments(Strict):
    """The whole of ``instruments.yaml``."""

    instruments: list[Instrument]
    response: Response
    reassessment: Reassessment
    course_rules: list[CourseRule]
    complications: list[Complication]
    reevaluation: Reevaluation
    ablation_rules: list[AblationRule]

    @model_validator(mode="after")
    def _complete(self) -> Instruments:
        if sorted(i.id for i in self.instruments) != sorted(INSTRUMENT_IDS):
            raise ValueError(f"need each instrument once: {', '.join(INSTRUMENT_IDS)}")
        if sorted(r.id for r in self.course_rules) != sorted(COURSE_RULE_IDS):
            raise ValueError(f"need each course rule once: {', '.join(COURSE_RULE_IDS)}")
        if sorted(r.id for r in self.ablation_rules) != ["dual_block_80", "seed_50"]:
            raise ValueError("need the ablation rules seed_50 and dual_block_80 once each")
        return self

    def instrument(self, instrument_id: str) -> Instrument:
        return by_id(self.instruments, instrument_id)

    def course_rule(self, rule_id: str) -> CourseRule:
        return by_id(self.course_rules, rule_id)

    def ablation_rule(self, rule_id: str) -> AblationRule:
        return by_id(self.ablation_rules, rule_id)


def check_instruments(
    ins: Instruments, medication_classes: set[str], inputs: InputVocabulary
) -> Iterator[FieldProblem]:
    """Cross-references the schema cannot see: assessment fields, classes, duplicate ids."""
    yield from _check_condition_fields(ins.reevaluation, inputs)
    for alt in ins.reevaluation.alternatives:
        for cls in alt.medication_classes:
            if cls not in medication_classes:
                yield FieldProblem(
                    f"instruments.yaml:reevaluation.alternatives[{alt.id}].medication_classes",
                    f"unknown medication class {cls!r}",
                )
    yield from _check_unique_ids(ins)


def _check_condition_fields(rev: Reevaluation, inputs: InputVocabulary) -> Iterator[FieldProblem]:
    """Every field a re-evaluation condition reads is an assessment field."""
    conditions: list[tuple[str, Condition | None]] = [
        *((f"technical_review[{c.id}]", c.when) for c in rev.technical_review),
        *((f"perpetuating_factors[{c.id}]", c.when) for c in rev.perpetuating_factors),
        *((f"failure_risk_factors[{c.id}]", c.when) for c in rev.failure_risk_factors),
        *((f"differential[{d.id}]", d.when) for d in rev.differential),
    ]
    for where, cond in conditions:
        for path in paths_in(cond) if cond is not None else []:
            if not inputs.has_assessment_field(path):
                yield FieldProblem(
                    f"instruments.yaml:reevaluation.{where}.when",
                    f"no input field {path!r} ({REGENERATE})",
                )


def _check_unique_ids(ins: Instruments) -> Iterator[FieldProblem]:
    """Ids are unique within each list of the re-evaluation and the complications."""
    rev = ins.reevaluation
    for group, items in (
        ("technical_review", rev.technical_review),
        ("perpetuating_factors", rev.perpetuating_factors),
        ("failure_risk_factors", rev.failure_risk_factors),
        ("differential", rev.differential),
        ("alternatives", rev.alternatives),
        ("complications", ins.complications),
    ):
        yield from duplicate_ids(f"instruments.yaml:{group}", [item.id for item in items])
