"""What a patient's EHR record says, as the services read it: the FHIR facts.

The FHIR R4 adapter (:mod:`triggerpath.adapters.fhir_r4.read`) maps a Bundle, a CDS
Hooks prefetch or a Bulk Data export to one :class:`PatientSnapshot`; the CDS services
(:mod:`triggerpath.services.cds`) and population screening
(:mod:`triggerpath.services.screening`) both read it. It lives here, below the adapter,
so that the services depend on these plain types only, never on the adapter::

    adapters.fhir_r4.read ──builds──> services.ehr.PatientSnapshot <──reads── services.cds
                                                                   <──reads── services.screening

Every fact keeps the record behind it (``reference``: ``Condition/123``) and the value set
that matched it; what the record cannot tell is listed in ``missing``, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from triggerpath.errors import FieldProblem, InvalidInput
from triggerpath.knowledge.schema import REGIONS, Region


@dataclass(frozen=True, slots=True)
class Evidence:
    """One record behind a fact: which resource, which code, which value set."""

    reference: str
    code: str
    display: str
    valueset: str
    when: str | None = None

    def __str__(self) -> str:
        when = f", {self.when}" if self.when else ""
        return f"{self.display} ({self.code}{when}; {self.reference})"


@dataclass(frozen=True, slots=True)
class Measurement:
    value: Decimal
    unit: str
    when: datetime | None
    reference: str


@dataclass(frozen=True, slots=True)
class MedicationEntry:
    name: str
    drug_class: str | None
    status: str
    active: bool
    reference: str
    code: str | None
    valuesets: tuple[str, ...]
    matched_by: str  # "code", "name" or "none"
    authored: str | None = None


@dataclass(frozen=True, slots=True)
class ProcedureEntry:
    reference: str
    code: str
    display: str
    status: str
    when: datetime | None


@dataclass(frozen=True, slots=True)
class Administration:
    """A local anesthetic given (MedicationAdministration), for the 24-hour total."""

    reference: str
    name: str
    when: datetime | None
    dose_value: Decimal | None
    dose_unit: str | None
    text: str | None


@dataclass(frozen=True, slots=True)
class Missing:
    field: str
    why: str


@dataclass
class PatientSnapshot:
    """What the EHR record says about one patient, with its evidence and gaps."""

    patient_id: str | None
    now: datetime
    knowledge_version: str
    age_years: int | None = None
    birth_date: str | None = None
    sex: str = "unknown"
    deceased: bool = False
    weight: Measurement | None = None
    last_weight: Measurement | None = None
    height: Measurement | None = None
    pregnant: bool | None = None
    findings: dict[str, list[Evidence]] = field(default_factory=dict)
    regions: list[Region] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)
    pain_conditions: list[Evidence] = field(default_factory=list)
    pain_onset: date | None = None
    medications: list[MedicationEntry] | None = None
    allergies: list[Evidence] | None = None
    allergy_list_reviewed: bool = False
    tpis: list[ProcedureEntry] | None = None
    administrations_24h: list[Administration] = field(default_factory=list)
    last_pain: Measurement | None = None
    recent_pain: Measurement | None = None
    pain_scores: list[Measurement] = field(default_factory=list)  # all, oldest first (measures)
    service_requests: list[Evidence] = field(default_factory=list)
    procedures: list[Evidence] = field(default_factory=list)  # coded non-TPI ones (e.g. PT)
    available: frozenset[str] = frozenset()
    missing: list[Missing] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def as_of(self) -> date:
        return self.now.date()

    @property
    def relevant(self) -> bool:
        """Back or neck pain is documented, or the patient has had TPIs."""
        return bool(self.pain_conditions or self.tpis)

    @property
    def active_medications(self) -> list[MedicationEntry]:
        return [m for m in self.medications or [] if m.active]

    def evidence(self, path: str) -> list[Evidence]:
        return self.findings.get(path, [])

    def assessment_input(self, *, screen_all_regions: bool = False) -> dict[str, Any]:
        """A partial assessment (only what the record tells; unknown findings omitted).

        ``screen_all_regions`` screens every body region when the record codes none
        (used by CDS Hooks so that safety checks still run; the caller says so).
        Raises ``InvalidInput`` when a required field (age, region) is unknown.
        """
        regions = self._regions(screen_all_regions)
        data: dict[str, Any] = {"patient": self._patient(), "regions": regions}
        pain = self._pain()
        if pain:
            data["pain"] = pain
        if self.causes:
            data["causes"] = list(dict.fromkeys(self.causes))
        for path in self.findings:
            if path != "patient.pregnant":
                _set_true(data, path)
        if self.medications is not None:
            data["medications"] = [
                {"name": m.name[:200], "drug_class": m.drug_class, "active": m.active}
                for m in self.medications
                if m.name
            ]
        return data

    def _regions(self, screen_all_regions: bool) -> list[str]:
        """The coded regions (or all, when asked); ``InvalidInput`` without an age or a region."""
        problems: list[FieldProblem] = []
        if self.age_years is None:
            problems.append(FieldProblem("patient.age_years", "no birth date in the record"))
        regions: list[str] = list(self.regions)
        if not regions and screen_all_regions:
            regions = list(REGIONS)
        if not regions:
            problems.append(FieldProblem("regions", "no back or neck pain site in the record"))
        if problems:
            raise InvalidInput(problems)
        return regions

    def _patient(self) -> dict[str, Any]:
        """Age, sex, a recent weight, a plausible height, the pregnancy status if known."""
        patient: dict[str, Any] = {"age_years": self.age_years, "sex": self.sex}
        if self.weight is not None:
            patient["weight_kg"] = str(self.weight.value)
        if self.height is not None and Decimal(50) <= self.height.value <= Decimal(250):
            patient["height_cm"] = str(self.height.value)
        if self.pregnant is not None and not (self.sex == "male" and self.pregnant):
            patient["pregnant"] = self.pregnant
        return patient

    def _pain(self) -> dict[str, Any]:
        """Weeks since the earliest onset, and a recent pain score."""
        pain: dict[str, Any] = {}
        if self.pain_onset is not None:
            pain["duration_weeks"] = round(max((self.as_of - self.pain_onset).days, 0) / 7, 1)
        if self.recent_pain is not None:
            pain["nrs"] = int(self.recent_pain.value)
        return pain


def _set_true(data: dict[str, Any], path: str) -> None:
    """``data["a"]["b"] = True`` for the dotted path ``a.b``."""
    node = data
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = True
