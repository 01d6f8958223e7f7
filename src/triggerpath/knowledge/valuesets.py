"""Value sets: the EHR codes TriggerPath reads and writes, kept as data.

``knowledge/data/valuesets.yaml`` lists the code systems (each with its URL and
the edition the codes were curated against) and the value sets built from them
(ICD-10-CM, SNOMED CT, LOINC, RxNorm, CPT). A value set says what a match means
for the assessment: the findings it sets (``sets``: paths of the assessment
input), the body regions and causes it documents, or the medication class it
belongs to. Every value set cites statement ids or names its reference.

Matching is exact, or by prefix for ICD-10-CM categories (``M54.1`` covers
``M54.16``); codes are compared without dots and case-insensitively for
ICD-10-CM. The FHIR adapters (``triggerpath.adapters.fhir_r4``) are the only
readers; the engine never sees a code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

from pydantic import Field, PrivateAttr, model_validator

from triggerpath.errors import FieldProblem
from triggerpath.knowledge.base import Strict, by_id
from triggerpath.knowledge.schema import REGIONS, Cited, ItemId, Region, duplicate_ids
from triggerpath.knowledge.vocabulary import REGENERATE, InputVocabulary

Cause = Literal["acute_trauma", "repetitive_microtrauma", "posture", "overuse", "unknown"]
ResourceType = Literal[
    "Condition",
    "Observation",
    "MedicationRequest",
    "MedicationStatement",
    "MedicationAdministration",
    "AllergyIntolerance",
    "Procedure",
    "ServiceRequest",
]

_NON_WORD = re.compile(r"[^a-z0-9]+")

#: Value set ids the FHIR adapters look up by name; the loader checks they exist.
REQUIRED_IDS: tuple[str, ...] = (
    "body_weight",
    "pain_severity",
    "pregnancy_status",
    "pregnancy_status_pregnant",
    "pregnancy_status_not_pregnant",
    "tpi_procedure",
    "local_anesthetic",
    "local_anesthetic_allergy",
    "latex_allergy",
    "no_known_allergy",
    "no_known_drug_allergy",
    "anticoagulant",
    "antiplatelet",
    "physical_therapy",
    "epidural_steroid_injection",
    "referral",
    "intramuscular_route",
)


class CodeSystem(Strict):
    """A terminology, its canonical URL and the edition the codes were curated against."""

    id: ItemId
    url: str = Field(pattern=r"^(https?|urn):")
    name: str
    version: str = Field(min_length=1)
    publisher: str


class Code(Strict):
    code: str = Field(min_length=1)
    display: str = Field(min_length=1)
    match: Literal["exact", "prefix"] = "exact"


class Include(Strict):
    """Codes of one system, or all codes of another value set (FHIR ``compose.include``)."""

    system: ItemId | None = None
    codes: list[Code] = Field(default_factory=list)
    valueset: ItemId | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Include:
        if (self.system is None) == (self.valueset is None):
            raise ValueError("give either 'system' with 'codes' or 'valueset'")
        if self.system is not None and not self.codes:
            raise ValueError("'system' needs at least one code")
        if self.valueset is not None and self.codes:
            raise ValueError("'valueset' takes no 'codes'")
        return self


class ValueSet(Cited):
    id: ItemId
    name: str
    description: str
    resources: list[ResourceType] = Field(min_length=1)
    sets: list[str] = Field(
        default_factory=list, description="assessment findings set to true by an active match"
    )
    regions: list[Region] = Field(default_factory=list)
    causes: list[Cause] = Field(default_factory=list)
    pain_condition: bool = Field(
        default=False, description="documents back or neck pain TriggerPath assesses"
    )
    drug_class: ItemId | None = Field(
        default=None, description="medication class id of pathway.yaml for drug value sets"
    )
    names: list[str] = Field(
        default_factory=list,
        description="lower-case names matched against uncoded text (start of a word)",
    )
    include: list[Include] = Field(min_length=1)


def normalise(system_id: str, code: str) -> str:
    """Codes compare case-insensitively and without dots for ICD-10-CM."""
    code = code.strip()
    return code.replace(".", "").upper() if system_id == "icd10cm" else code


class ValueSetIndex:
    """Plain lookup tables built once per catalog (the FHIR reader's hot path)."""

    __slots__ = ("by_id", "by_url", "exact", "names", "prefix", "prefix_systems")

    def __init__(
        self,
        by_id: dict[str, ValueSet],
        by_url: dict[str, str],
        exact: dict[tuple[str, str], tuple[str, ...]],
        prefix: dict[tuple[str, str], tuple[str, ...]],
        names: tuple[tuple[str, str], ...],
    ) -> None:
        self.by_id = by_id
        self.by_url = by_url
        self.exact = exact
        self.prefix = prefix
        self.prefix_systems = frozenset(system for system, _ in prefix)
        self.names = names

    def match(self, system_url: str | None, code: str | None) -> tuple[str, ...]:
        system_id = self.by_url.get(system_url or "")
        if system_id is None or not code:
            return ()
        key = normalise(system_id, code)
        hits = self.exact.get((system_id, key), ())
        if system_id not in self.prefix_systems:
            return hits
        out = list(hits)
        for end in range(len(key), 0, -1):
            for vs_id in self.prefix.get((system_id, key[:end]), ()):
                if vs_id not in out:
                    out.append(vs_id)
        return tuple(out)

    def match_text(self, text: str | None) -> tuple[str, ...]:
        if not text:
            return ()
        words = " " + _NON_WORD.sub(" ", text.lower()).strip() + " "
        hits: list[str] = []
        for name, vs_id in self.names:
            if f" {name}" in words and vs_id not in hits:
                hits.append(vs_id)
        return tuple(hits)


class ValueSetCatalog(Strict):
    systems: list[CodeSystem] = Field(min_length=1)
    valuesets: list[ValueSet] = Field(min_length=1)

    _by_id: dict[str, ValueSet] = PrivateAttr(default_factory=dict)
    _index: ValueSetIndex | None = PrivateAttr(default=None)

    def model_post_init(self, _context: object) -> None:
        self._by_id = {v.id: v for v in self.valuesets}
        exact: dict[tuple[str, str], list[str]] = {}
        prefix: dict[tuple[str, str], list[str]] = {}
        for vs in self.valuesets:
            for system_id, code in self._expand(vs.id, set()):
                table = prefix if code.match == "prefix" else exact
                key = (system_id, normalise(system_id, code.code))
                if vs.id not in table.setdefault(key, []):
                    table[key].append(vs.id)
        names = tuple(
            (_NON_WORD.sub(" ", name.lower()).strip(), vs.id)
            for vs in self.valuesets
            for name in self._expand_names(vs.id, set())
        )
        self._index = ValueSetIndex(
            dict(self._by_id),
            {s.url: s.id for s in self.systems},
            {k: tuple(v) for k, v in exact.items()},
            {k: tuple(v) for k, v in prefix.items()},
            names,
        )

    @property
    def index(self) -> ValueSetIndex:
        assert self._index is not None
        return self._index

    def _expand(self, vs_id: str, seen: set[str]) -> Iterator[tuple[str, Code]]:
        vs = self._by_id.get(vs_id)
        if vs is None or vs_id in seen:
            return
        seen.add(vs_id)
        for inc in vs.include:
            if inc.valueset is not None:
                yield from self._expand(inc.valueset, seen)
            else:
                assert inc.system is not None
                for code in inc.codes:
                    yield inc.system, code

    def _expand_names(self, vs_id: str, seen: set[str]) -> Iterator[str]:
        vs = self._by_id.get(vs_id)
        if vs is None or vs_id in seen:
            return
        seen.add(vs_id)
        yield from vs.names
        for inc in vs.include:
            if inc.valueset is not None:
                yield from self._expand_names(inc.valueset, seen)

    # ------------------------------------------------------------------ lookups
    def get(self, vs_id: str) -> ValueSet:
        return self.index.by_id[vs_id]

    def system_id(self, url: str | None) -> str | None:
        """Our id (``icd10cm``) of a code system URL, or None when we do not use it."""
        return self.index.by_url.get(url or "")

    def system(self, system_id: str) -> CodeSystem:
        return by_id(self.systems, system_id)

    def match(self, system_url: str | None, code: str | None) -> tuple[str, ...]:
        """Ids of the value sets holding ``code`` of the system with that URL."""
        return self.index.match(system_url, code)

    def match_text(self, text: str | None) -> tuple[str, ...]:
        """Value sets whose names start a word of ``text`` (for uncoded entries)."""
        return self.index.match_text(text)

    def contains(self, vs_id: str, system_url: str | None, code: str | None) -> bool:
        return vs_id in self.match(system_url, code)

    def codes(self, vs_id: str) -> list[tuple[CodeSystem, Code]]:
        """The value set's codes expanded (included value sets too), with their systems."""
        return [(self.system(s), c) for s, c in self._expand(vs_id, set())]


# --------------------------------------------------------------------------- checks
def check_valuesets(
    cat: ValueSetCatalog, medication_classes: set[str], inputs: InputVocabulary
) -> Iterator[FieldProblem]:
    """Cross-references the schema cannot see: systems, ids, fields, drug classes."""
    where = "valuesets.yaml"
    systems = {s.id for s in cat.systems}
    ids = [v.id for v in cat.valuesets]
    yield from duplicate_ids(f"{where}:valuesets", ids)
    seen = set(ids)
    for missing in sorted(set(REQUIRED_IDS) - seen):
        yield FieldProblem(f"{where}:valuesets", f"value set {missing!r} is required")
    for vs in cat.valuesets:
        loc = f"{where}:valuesets[{vs.id}]"
        for inc in vs.include:
            if inc.system is not None and inc.system not in systems:
                yield FieldProblem(f"{loc}.include", f"unknown code system {inc.system!r}")
            if inc.valueset is not None and inc.valueset not in seen:
                yield FieldProblem(f"{loc}.include", f"unknown value set {inc.valueset!r}")
        for path in vs.sets:
            if not inputs.has_assessment_field(path):
                yield FieldProblem(f"{loc}.sets", f"no input field {path!r} ({REGENERATE})")
        if vs.drug_class is not None and vs.drug_class not in medication_classes:
            yield FieldProblem(f"{loc}.drug_class", f"unknown medication class {vs.drug_class!r}")
        for r in vs.regions:
            if r not in REGIONS:  # pragma: no cover - the schema already restricts it
                yield FieldProblem(f"{loc}.regions", f"unknown region {r!r}")


__all__ = [
    "REQUIRED_IDS",
    "Code",
    "CodeSystem",
    "Include",
    "ValueSet",
    "ValueSetCatalog",
    "ValueSetIndex",
    "check_valuesets",
]
