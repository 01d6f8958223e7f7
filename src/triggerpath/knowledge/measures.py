"""Quality measures of TPI care as data: ``knowledge/data/measures.yaml``, checked at load.

A measure names its populations (initial population, denominator, denominator exclusion,
numerator) as combinations of *facts* — a closed vocabulary of things the FHIR adapter's
findings can establish about a patient (``FACTS``). Keeping the vocabulary closed means a
typo in the YAML is a load error, not a population that silently counts nobody. The loader
also checks every statement id, value set id and medication class against the rest of the
knowledge base, and the reassessment window against the values of S003.12.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Literal

from pydantic import Field, model_validator

from triggerpath.errors import FieldProblem, KnowledgeError
from triggerpath.knowledge.base import Strict
from triggerpath.knowledge.datafile import validated
from triggerpath.knowledge.loader import Knowledge, load_knowledge
from triggerpath.knowledge.schema import StatementId

MEASURES_FILE = "measures.yaml"

Fact = Literal[
    "back_pain",
    "myofascial_back_pain",
    "tpi_in_period",
    "tpi_on_record",
    "conservative_care_before_tpi",
    "conservative_care_on_record",
    "reassessed_2_to_4_weeks",
    "reassessment_window_open",
    "over_course_limit",
    "reevaluated_at_course_limit",
    "bleeding_risk_medicine_at_tpi",
    "red_flag_or_radicular_at_tpi",
    "physical_therapy_alongside_tpi",
    "referral_on_record",
]
#: The fact vocabulary, in order (documentation and validation).
FACTS: tuple[str, ...] = Fact.__args__  # type: ignore[attr-defined]

Population = Literal["initial_population", "denominator", "denominator_exclusion", "numerator"]
#: Populations in nesting order; the FHIR codes of measure-population are these with hyphens.
POPULATIONS: tuple[Population, ...] = (
    "initial_population",
    "denominator",
    "denominator_exclusion",
    "numerator",
)


class Criteria(Strict):
    """A population: every fact in ``all`` holds and none in ``none`` does (empty: everyone)."""

    all: list[Fact] = Field(default_factory=list)
    none: list[Fact] = Field(default_factory=list)

    def describe(self) -> str:
        parts = [*self.all, *(f"not {f}" for f in self.none)]
        return " and ".join(parts) or "everyone in the enclosing population"


class Populations(Strict):
    initial_population: Criteria
    denominator: Criteria
    denominator_exclusion: Criteria | None = None
    numerator: Criteria


class Measure(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9-]{2,63}$")  # also a valid FHIR id
    title: str = Field(min_length=5)
    description: str = Field(min_length=10)
    improvement: Literal["increase", "decrease"]
    populations: Populations
    statement_ids: list[StatementId] = Field(min_length=1)


class DayWindow(Strict):
    min: int = Field(ge=0)
    max: int = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> DayWindow:
        if self.min > self.max:
            raise ValueError("min is after max")
        return self


class AroundWindow(Strict):
    before: int = Field(ge=0)
    after: int = Field(ge=0)


class Parameters(Strict):
    reassessment_days: DayWindow
    alongside_days: AroundWindow
    conservative_care_valuesets: list[str] = Field(min_length=1)
    conservative_medication_classes: list[str] = Field(min_length=1)
    bleeding_risk_classes: list[str] = Field(min_length=1)
    red_flag_valuesets: list[str] = Field(min_length=1)
    radicular_valuesets: list[str] = Field(min_length=1)
    myofascial_valuesets: list[str] = Field(min_length=1)
    physical_therapy_valuesets: list[str] = Field(min_length=1)
    referral_valuesets: list[str] = Field(min_length=1)


class MeasureCatalog(Strict):
    parameters: Parameters
    measures: list[Measure] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> MeasureCatalog:
        ids = [m.id for m in self.measures]
        if len(ids) != len(set(ids)):
            raise ValueError("measure ids must be unique")
        return self

    def by_id(self, measure_id: str) -> Measure:
        for m in self.measures:
            if m.id == measure_id:
                return m
        raise KeyError(measure_id)


def check_measures(catalog: MeasureCatalog, kb: Knowledge) -> Iterator[FieldProblem]:
    """Cross-references: statements, value sets, medication classes, S003.12's window."""
    for i, m in enumerate(catalog.measures):
        for sid in m.statement_ids:
            if sid not in kb.statements:
                yield FieldProblem(f"{MEASURES_FILE}:measures.{i}.statement_ids", f"{sid} unknown")
    p = catalog.parameters
    valuesets = {v.id for v in kb.valuesets.valuesets}
    for name in (
        "conservative_care_valuesets",
        "red_flag_valuesets",
        "radicular_valuesets",
        "myofascial_valuesets",
        "physical_therapy_valuesets",
        "referral_valuesets",
    ):
        for vs in getattr(p, name):
            if vs not in valuesets:
                yield FieldProblem(f"{MEASURES_FILE}:parameters.{name}", f"value set {vs} unknown")
    classes = {c.id for c in kb.pathway.medication_classes}
    for name in ("conservative_medication_classes", "bleeding_risk_classes"):
        for cls in getattr(p, name):
            if cls not in classes:
                yield FieldProblem(f"{MEASURES_FILE}:parameters.{name}", f"class {cls} unknown")
    values = kb.statements["S003.12"].values if "S003.12" in kb.statements else {}
    window = (values.get("reassess_weeks_min"), values.get("reassess_weeks_max"))
    if window != (p.reassessment_days.min / 7, p.reassessment_days.max / 7):
        yield FieldProblem(
            f"{MEASURES_FILE}:parameters.reassessment_days", f"disagrees with S003.12 {window}"
        )


@cache
def load_measures() -> MeasureCatalog:
    """The packaged measure catalogue, validated against its schema and the knowledge base."""
    catalog = validated(MEASURES_FILE, MeasureCatalog)
    problems = list(check_measures(catalog, load_knowledge()))
    if problems:
        raise KnowledgeError(problems)
    return catalog
