"""Typed schema of the injectate knowledge (``knowledge/data/injectates.yaml``).

Local anesthetics, corticosteroids and the needle alternatives are data, each
value naming its source. Dose limits keep **one entry per source** (the US
labels, the UK formulary and a toxicology textbook) so that where the sources
differ both values are kept and shown; which one applies is a clinic policy
choice (:class:`triggerpath.domain.policy.Policy.dose_limit_source`, default
the most conservative). Numbers are :class:`~decimal.Decimal` so that the dose
engine computes exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from triggerpath.errors import FieldProblem
from triggerpath.knowledge.base import Strict, by_id, find
from triggerpath.knowledge.schema import Cited, ItemId, Statement, TextItem

FILE = "injectates.yaml"
SourceId = Literal["fda_label", "uk_bnf", "textbook"]
SOURCE_IDS: tuple[SourceId, ...] = ("fda_label", "uk_bnf", "textbook")
DoseLimitPolicy = Literal["conservative", "fda_label", "uk_bnf", "textbook"]
Form = Literal["plain", "epinephrine"]
WeightBasis = Literal["actual", "ideal", "lean"]


class LimitSource(Strict):
    """A source of dose limits (a label set, a formulary, a textbook)."""

    id: SourceId
    kind: Literal["label", "formulary", "textbook"]
    name: str
    reference: str


class DoseLimit(Strict):
    """One source's single-dose limit for one form (plain or with epinephrine)."""

    source: SourceId
    mg_per_kg: Decimal | None = Field(default=None, gt=0, le=20)
    max_mg: Decimal | None = Field(default=None, gt=0, le=2000)
    reference: str = Field(min_length=5, description="where the value is written")
    note: str | None = None

    @model_validator(mode="after")
    def _has_a_value(self) -> DoseLimit:
        if self.mg_per_kg is None and self.max_mg is None:
            raise ValueError("give mg_per_kg, max_mg or both")
        return self


class DailyLimit(Strict):
    """One source's maximum over 24 hours (all forms together)."""

    source: SourceId
    max_mg: Decimal = Field(gt=0, le=5000)
    reference: str = Field(min_length=5)


class FormLimits(Strict):
    plain: list[DoseLimit] = Field(min_length=1)
    epinephrine: list[DoseLimit] = Field(default_factory=list)


class MarketedStrengths(Strict):
    """Strengths (%) supplied for infiltration or peripheral injection."""

    plain: list[Decimal] = Field(min_length=1)
    epinephrine: list[Decimal] = Field(default_factory=list)


class PreservativeFreeForm(Strict):
    epinephrine: bool
    percents: list[Decimal] = Field(min_length=1)
    product: str
    note: str | None = None


class Duration(Strict):
    plain: str
    epinephrine: str | None = None


class LocalAnesthetic(Cited):
    id: ItemId
    name: str
    aliases: list[str] = Field(default_factory=list)  # lower-case names accepted as input
    products: str
    marketed_percent: MarketedStrengths
    strength_note: str
    limits: FormLimits
    limits_24h: list[DailyLimit] = Field(default_factory=list)
    onset: str
    duration: Duration
    preservative_free: list[PreservativeFreeForm] = Field(min_length=1)
    preservative_note: str

    @model_validator(mode="after")
    def _consistent(self) -> LocalAnesthetic:
        if bool(self.marketed_percent.epinephrine) != bool(self.limits.epinephrine):
            raise ValueError("epinephrine strengths and epinephrine limits must be given together")
        for form in ("plain", "epinephrine"):
            entries: list[DoseLimit] = getattr(self.limits, form)
            if entries and not any(e.max_mg is not None for e in entries):
                raise ValueError(f"limits.{form}: at least one source must give max_mg")
            sources = [e.source for e in entries]
            if len(sources) != len(set(sources)):
                raise ValueError(f"limits.{form}: one entry per source")
        return self

    def marketed(self, epinephrine: bool) -> list[Decimal]:
        return self.marketed_percent.epinephrine if epinephrine else self.marketed_percent.plain

    def form_limits(self, epinephrine: bool) -> list[DoseLimit]:
        return self.limits.epinephrine if epinephrine else self.limits.plain


class Convention(Cited):
    id: ItemId
    name: str
    text: str


class WeightBasisItem(Cited):
    id: WeightBasis
    name: str
    formula: str
    text: str


class ToxicitySigns(Cited):
    id: ItemId
    name: str
    early: list[str] = Field(min_length=1)
    late: list[str] = Field(min_length=1)
    response: str


class Corticosteroid(Cited):
    id: ItemId
    name: str
    concentrations_mg_per_ml: list[Decimal] = Field(min_length=1)
    particulate: bool
    note: str


class Corticosteroids(Cited):
    dose_mg_min: Decimal = Field(gt=0)
    dose_mg_max: Decimal = Field(gt=0)
    indication: str
    caveat: str
    side_effects: str
    agents: list[Corticosteroid] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> Corticosteroids:
        if self.dose_mg_min >= self.dose_mg_max:
            raise ValueError("dose_mg_min must be below dose_mg_max")
        return self


class Alternative(Cited):
    id: ItemId
    name: str
    text: str
    when: str


class Diluent(Cited):
    id: ItemId
    name: str
    text: str


class Material(Cited):
    id: ItemId
    name: str
    when: Literal["always", "ultrasound", "diluent", "steroid"] = "always"


class Injectates(Strict):
    """The whole injectate file."""

    sources: list[LimitSource] = Field(min_length=1)
    single_dose_rule: Convention
    mixture_convention: Convention
    unlabelled_24h_rule: Convention
    weight_bases: list[WeightBasisItem] = Field(min_length=3)
    local_anesthetics: list[LocalAnesthetic] = Field(min_length=1)
    diluent: Diluent
    toxicity: ToxicitySigns
    corticosteroids: Corticosteroids
    alternatives: list[Alternative] = Field(min_length=1)
    checklist: list[TextItem] = Field(min_length=1)
    materials: list[Material] = Field(min_length=1)
    technique: list[TextItem] = Field(min_length=1)

    def agent(self, name: str) -> LocalAnesthetic | None:
        """The local anesthetic called ``name`` (id or alias, any case), or None."""
        key = name.strip().lower()
        for la in self.local_anesthetics:
            if key == la.id or key in la.aliases:
                return la
        return None

    def steroid(self, name: str) -> Corticosteroid | None:
        key = name.strip().lower()
        return find(self.corticosteroids.agents, key)

    def source(self, source_id: str) -> LimitSource:
        return by_id(self.sources, source_id)

    def weight_basis(self, basis: str) -> WeightBasisItem:
        return by_id(self.weight_bases, basis)

    def technique_item(self, item_id: str) -> TextItem:
        return by_id(self.technique, item_id)


def check_injectates(
    inj: Injectates, statements: Mapping[str, Statement]
) -> Iterator[FieldProblem]:
    """Cross-checks the schema cannot make: ids, sources, strengths, seed values."""
    ids = [s.id for s in inj.sources]
    if len(ids) != len(set(ids)):
        yield FieldProblem(f"{FILE}:sources", "duplicate source id")
    names: dict[str, str] = {}
    for la in inj.local_anesthetics:
        yield from _check_anesthetic(la, set(ids), names)
    steroid_ids = [s.id for s in inj.corticosteroids.agents]
    if len(steroid_ids) != len(set(steroid_ids)):
        yield FieldProblem(f"{FILE}:corticosteroids.agents", "duplicate id")
    if {w.id for w in inj.weight_bases} != {"actual", "ideal", "lean"}:
        yield FieldProblem(f"{FILE}:weight_bases", "need actual, ideal and lean once each")
    yield from _check_seed_values(inj, statements)


def _check_anesthetic(
    la: LocalAnesthetic, known_sources: set[str], names: dict[str, str]
) -> Iterator[FieldProblem]:
    """Lower-case unique names, sane strengths, known sources, offered preservative-free forms."""
    at = f"{FILE}:local_anesthetics[{la.id}]"
    for name in [la.id, *la.aliases]:
        if name != name.lower():
            yield FieldProblem(f"{at}.aliases", f"{name!r} must be lower case")
        if name in names and names[name] != la.id:
            yield FieldProblem(f"{at}.aliases", f"{name!r} also names {names[name]}")
        names[name] = la.id
    for form in ("plain", "epinephrine"):
        strengths: list[Decimal] = getattr(la.marketed_percent, form)
        if any(not (Decimal(0) < p <= Decimal(100)) for p in strengths):
            yield FieldProblem(f"{at}.marketed_percent.{form}", "strengths must be in (0, 100]")
        if len(set(strengths)) != len(strengths):
            yield FieldProblem(f"{at}.marketed_percent.{form}", "duplicate strength")
        for e in getattr(la.limits, form):
            if e.source not in known_sources:
                yield FieldProblem(f"{at}.limits.{form}", f"unknown source {e.source!r}")
    for d in la.limits_24h:
        if d.source not in known_sources:
            yield FieldProblem(f"{at}.limits_24h", f"unknown source {d.source!r}")
    for i, pf in enumerate(la.preservative_free):
        offered = set(la.marketed(pf.epinephrine))
        extra = [p for p in pf.percents if p not in offered]
        if extra:
            yield FieldProblem(
                f"{at}.preservative_free[{i}]",
                f"strengths {extra} are not among the marketed strengths",
            )


def _check_seed_values(
    inj: Injectates, statements: Mapping[str, Statement]
) -> Iterator[FieldProblem]:
    """The seed's own numbers (S003.09 steroid dose, S000.28 bupivacaine) are the data's."""
    seed = statements.get("S003.09")
    if seed is not None and (
        float(inj.corticosteroids.dose_mg_min) != seed.values.get("steroid_mg_min")
        or float(inj.corticosteroids.dose_mg_max) != seed.values.get("steroid_mg_max")
    ):
        yield FieldProblem(f"{FILE}:corticosteroids", "dose range differs from S003.09")
    bupi = inj.agent("bupivacaine")
    seed = statements.get("S000.28")
    if bupi is None or seed is None:
        return
    label = {e.source: e for e in bupi.limits.plain}.get("fda_label")
    label_epi = {e.source: e for e in bupi.limits.epinephrine}.get("fda_label")
    daily = {d.source: d for d in bupi.limits_24h}.get("fda_label")
    pairs = [
        (label.max_mg if label else None, seed.values.get("bupivacaine_single_mg_min")),
        (label_epi.max_mg if label_epi else None, seed.values.get("bupivacaine_single_mg_max")),
        (daily.max_mg if daily else None, seed.values.get("bupivacaine_24h_max_mg")),
    ]
    if any(ours is None or float(ours) != theirs for ours, theirs in pairs):
        yield FieldProblem(
            f"{FILE}:local_anesthetics[bupivacaine]", "label limits differ from S000.28"
        )
