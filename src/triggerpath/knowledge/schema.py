"""Typed schema of the knowledge base (clinical content kept as data).

Every item has a stable id and cites the statement ids (``S000.11``) of
``shared/spec/statements.yaml`` it encodes; where the source documents are
silent, an item names the established reference it uses and says so with
``basis: reference``. Unknown keys are rejected so that a typo in a data file
fails loudly at load time instead of silently dropping clinical content.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from triggerpath.errors import FieldProblem
from triggerpath.knowledge.base import Strict
from triggerpath.knowledge.conditions import Condition

STATEMENT_ID = re.compile(r"^S\d{3}\.\d{2}$")


def _check_statement_id(value: str) -> str:
    if not STATEMENT_ID.match(value):
        raise ValueError(f"{value!r} is not a statement id like S000.01")
    return value


def duplicate_ids(where: str, ids: Iterable[str]) -> Iterator[FieldProblem]:
    """A problem for each id met a second time (the loaders' one uniqueness check)."""
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            yield FieldProblem(where, f"duplicate id {i!r}")
        seen.add(i)


StatementId = Annotated[str, AfterValidator(_check_statement_id)]
ItemId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]

Region = Literal["neck", "upper_back", "mid_back", "low_back", "pelvic_girdle"]
REGIONS: tuple[Region, ...] = ("neck", "upper_back", "mid_back", "low_back", "pelvic_girdle")

RedirectCode = Literal[
    "epidural_steroid_injection",
    "medial_branch_block",
    "sacroiliac_evaluation",
    "discogenic_evaluation",
    "structural_treatment",
    "other_source_evaluation",
    "systemic_evaluation",
]
Basis = Literal["seed", "seed_and_reference", "reference"]


class Cited(Strict):
    """Anything clinical: it cites statement ids and, where needed, references."""

    statement_ids: list[StatementId] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list)
    basis: Basis = "seed"

    @model_validator(mode="after")
    def _has_a_source(self) -> Cited:
        if not self.statement_ids and not self.references:
            raise ValueError("cite at least one statement id or name a reference")
        if self.basis != "seed" and not self.references:
            raise ValueError(f"basis {self.basis!r} needs the reference named in 'references'")
        return self


# --------------------------------------------------------------------------- manifest
class SeedSource(Strict):
    code: str = Field(pattern=r"^\d{3}$")
    title: str
    kind: str


class Manifest(Strict):
    version: str = Field(pattern=r"^\d{4}\.\d{1,2}\.\d+$")
    released: str
    description: str
    seeds: list[SeedSource]


# --------------------------------------------------------------------------- evidence
StatementKind = Literal["rule", "technique", "safety", "evidence", "education", "fact"]


class Statement(Strict):
    """One source statement, paraphrased in TriggerPath's own words."""

    id: StatementId
    seed: str = Field(pattern=r"^\d{3}$")
    kind: StatementKind
    topic: str
    summary: str = Field(min_length=10)
    strength: str | None = None  # strength of recommendation where the source gives it
    quality: str | None = None  # quality of evidence where the source gives it
    values: dict[str, float] = Field(default_factory=dict)


class ConflictPosition(Strict):
    statement_id: StatementId
    position: str


class SourceConflict(Strict):
    """Sources that disagree: both are kept, with the range, never one picked silently."""

    id: ItemId
    topic: str
    positions: list[ConflictPosition] = Field(min_length=2)
    range: str
    resolution: str


class Evidence(Strict):
    statements: list[Statement]
    conflicts: list[SourceConflict]


# --------------------------------------------------------------------------- muscles
Guidance = Literal["palpation", "ultrasound_recommended", "ultrasound_strongly_advised"]


class NeedleSpec(Strict):
    gauge_min: int = Field(ge=18, le=32)
    gauge_max: int = Field(ge=18, le=32)
    length_mm_min: int = Field(gt=0, le=150)
    length_mm_max: int = Field(gt=0, le=150)

    @model_validator(mode="after")
    def _ordered(self) -> NeedleSpec:
        if self.gauge_min > self.gauge_max or self.length_mm_min > self.length_mm_max:
            raise ValueError("min must not exceed max")
        return self


class Hazard(Cited):
    id: ItemId
    name: str
    risk: str  # what can go wrong
    precaution: str  # what the operator does about it


class Muscle(Cited):
    id: ItemId
    name: str
    regions: list[Region] = Field(min_length=1)
    origin: str
    insertion: str
    action: str
    referral_zones: list[str] = Field(min_length=1)
    position: str
    landmarks: str
    needle: NeedleSpec
    approach: str
    angle: str
    depth: Literal["superficial", "intermediate", "deep"]
    guidance: Guidance
    hazards: list[ItemId] = Field(default_factory=list)
    volume_ml_min: float = Field(gt=0, le=5)
    volume_ml_max: float = Field(gt=0, le=5)
    exercises: list[ItemId] = Field(default_factory=list)
    # body-map drawing hint: x,y in a 0..100 posterior-view box (left side of the patient)
    map_x: float = Field(ge=0, le=100)
    map_y: float = Field(ge=0, le=100)


class Exercise(Cited):
    id: ItemId
    name: str
    kind: Literal["stretch", "range_of_motion", "strengthening", "self_massage", "posture"]
    instructions: str
    dose: str  # sets, reps, holds, frequency


class Anatomy(Strict):
    hazards: list[Hazard]
    muscles: list[Muscle]
    exercises: list[Exercise]


# --------------------------------------------------------------------------- pathway
class Modality(Strict):
    id: ItemId
    name: str


class CareStep(Cited):
    stage: int = Field(ge=1, le=3)
    id: ItemId
    name: str
    description: str
    modalities: list[Modality]


class RedFlag(Cited):
    id: ItemId
    name: str
    description: str
    when: Condition
    workup: str
    urgency: Literal["emergency", "urgent"]
    #: where the urgent referral letter is addressed (TriggerPath's routing, local policy may
    #: name its own department)
    service: str = Field(min_length=3, max_length=200)


class PainGenerator(Cited):
    id: ItemId
    name: str
    regions: list[Region] = Field(min_length=1)
    when: Condition
    redirect: RedirectCode
    explanation: str
    workup: str


class Redirect(Cited):
    code: RedirectCode
    name: str
    description: str
    #: the service the referral letter for this redirect is addressed to
    service: str = Field(min_length=3, max_length=200)


class Contraindication(Cited):
    id: ItemId
    name: str
    severity: Literal["absolute", "relative"]
    when: Condition
    explanation: str
    check: str  # what the clinician checks or does


class CautionRule(Cited):
    """A warning that does not change the verdict (risk factors, age, …)."""

    id: ItemId
    name: str
    when: Condition
    text: str


class TriggerPointCriteria(Cited):
    id: ItemId
    name: str
    description: str
    required: Condition  # paths relative to one examined trigger point
    confirmatory: list[str]
    supportive: list[str]


class DurationPhase(Cited):
    id: Literal["acute", "subacute", "chronic"]
    name: str
    min_weeks: float
    max_weeks: float | None  # upper bound; None = open
    max_inclusive: bool = False  # whether a duration of exactly max_weeks belongs here
    sessions_min: int = Field(ge=1)
    sessions_max: int = Field(ge=1)


class TextItem(Cited):
    id: ItemId
    title: str
    text: str


class MedicationClass(Cited):
    id: ItemId
    name: str
    members: list[str] = Field(min_length=1)  # lower-case generic and brand names
    # whole-word abbreviations (ASA, LMWH, DOAC); kept apart from members, which also serve
    # the FHIR text fallback that matches word starts
    abbreviations: list[str] = Field(default_factory=list)


class Pathway(Strict):
    care_steps: list[CareStep]
    red_flags: list[RedFlag]
    red_flag_list_source: str
    pain_generators: list[PainGenerator]
    redirects: list[Redirect]
    contraindications: list[Contraindication]
    cautions: list[CautionRule]
    trigger_point_criteria: TriggerPointCriteria
    duration_phases: list[DurationPhase]
    duration_source: str
    comprehensive_care: list[TextItem]
    pitfalls: list[TextItem]
    evidence_notes: list[TextItem]
    supporting_indications: list[CautionRule]
    expected_relief: TextItem
    medication_classes: list[MedicationClass]
    procedure_essentials: list[TextItem]
    follow_up: list[TextItem]
    patient_education: list[TextItem]
