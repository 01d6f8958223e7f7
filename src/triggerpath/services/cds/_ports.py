"""The ports the CDS services need: what they read from a patient record and write as FHIR.

The services never import the FHIR adapter (layers: adapters are reached only from the
entrypoints and the composition root). :class:`~triggerpath.adapters.fhir_r4.read.PatientSnapshot`
satisfies :class:`Record` structurally, and :class:`Fhir` is implemented by
:mod:`triggerpath.adapters.cds_fhir`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from triggerpath.knowledge.loader import Knowledge


class EvidenceItem(Protocol):
    """One coded EHR record behind a finding (shown in a card's trace)."""

    @property
    def reference(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def display(self) -> str: ...
    @property
    def valueset(self) -> str: ...
    @property
    def when(self) -> str | None: ...


class Quantity(Protocol):
    @property
    def value(self) -> Decimal: ...


class MissingItem(Protocol):
    @property
    def field(self) -> str: ...
    @property
    def why(self) -> str: ...


class Medication(Protocol):
    @property
    def reference(self) -> str: ...
    @property
    def code(self) -> str | None: ...
    @property
    def name(self) -> str: ...
    @property
    def valuesets(self) -> tuple[str, ...]: ...
    @property
    def authored(self) -> str | None: ...
    @property
    def drug_class(self) -> str | None: ...


class PastTpi(Protocol):
    @property
    def reference(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def display(self) -> str: ...
    @property
    def when(self) -> datetime | None: ...


class Given(Protocol):
    """A local anesthetic administration in the last 24 hours."""

    @property
    def reference(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def when(self) -> datetime | None: ...
    @property
    def dose_value(self) -> Decimal | None: ...
    @property
    def dose_unit(self) -> str | None: ...
    @property
    def text(self) -> str | None: ...


class Record(Protocol):
    """What the cards read from the EHR record (the FHIR adapter's ``PatientSnapshot``)."""

    @property
    def patient_id(self) -> str | None: ...
    @property
    def now(self) -> datetime: ...
    @property
    def as_of(self) -> date: ...
    @property
    def relevant(self) -> bool: ...
    @property
    def sex(self) -> str: ...
    @property
    def weight(self) -> Quantity | None: ...
    @property
    def height(self) -> Quantity | None: ...
    @property
    def regions(self) -> Sequence[str]: ...
    @property
    def findings(self) -> Mapping[str, Sequence[EvidenceItem]]: ...
    @property
    def pain_conditions(self) -> Sequence[EvidenceItem]: ...
    @property
    def service_requests(self) -> Sequence[EvidenceItem]: ...
    @property
    def tpis(self) -> Sequence[PastTpi] | None: ...
    @property
    def administrations_24h(self) -> Sequence[Given]: ...
    @property
    def active_medications(self) -> Sequence[Medication]: ...
    @property
    def missing(self) -> Sequence[MissingItem]: ...

    def evidence(self, path: str) -> Sequence[EvidenceItem]: ...

    def assessment_input(self, *, screen_all_regions: bool = False) -> dict[str, Any]: ...


class Fhir(Protocol):
    """FHIR R4 reading and writing the CDS services need (implemented by an adapter)."""

    def bundle_resources(self, bundle: Any, where: str = "bundle") -> list[Any]:
        """The resources of a Bundle; ``InvalidInput`` naming ``where`` when it is not one."""
        ...

    def referral_request(
        self,
        kb: Knowledge,
        vs_id: str,
        *,
        patient_id: str,
        now: datetime,
        reason: str,
        statement_ids: Sequence[str],
        status: Literal["draft", "active"] = "draft",
        resource_id: str | None = None,
        code: str | None = None,
        coded: bool = True,
        validate: bool = True,
    ) -> dict[str, Any]:
        """A draft referral ServiceRequest coded from a value set."""
        ...
