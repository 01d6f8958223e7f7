"""What population screening reads of a patient's record, as ports (``typing.Protocol``).

The service never imports an adapter: the FHIR R4 adapter's ``PatientSnapshot`` (and its
evidence, medication, procedure and measurement entries) satisfy these protocols
structurally, and a partition source (the bulk adapter) hands snapshots over through
:class:`PartitionSource`. Members are read-only properties so that frozen dataclasses and
covariant containers (a ``list`` of entries) satisfy them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol


class EvidenceLike(Protocol):
    """One coded record behind a finding: its resource reference, value set and date."""

    @property
    def reference(self) -> str: ...
    @property
    def valueset(self) -> str: ...
    @property
    def when(self) -> str | None: ...


class ProcedureLike(Protocol):
    @property
    def reference(self) -> str: ...
    @property
    def when(self) -> datetime | None: ...


class MedicationLike(Protocol):
    @property
    def reference(self) -> str: ...
    @property
    def drug_class(self) -> str | None: ...
    @property
    def active(self) -> bool: ...
    @property
    def authored(self) -> str | None: ...


class MeasurementLike(Protocol):
    @property
    def value(self) -> Decimal: ...
    @property
    def when(self) -> datetime | None: ...
    @property
    def reference(self) -> str: ...


class ScreeningSnapshot(Protocol):
    """A patient's record as the FHIR adapter reads it (codes only, nothing guessed)."""

    @property
    def patient_id(self) -> str | None: ...
    @property
    def age_years(self) -> int | None: ...
    @property
    def sex(self) -> str: ...
    @property
    def regions(self) -> Sequence[str]: ...
    @property
    def relevant(self) -> bool: ...
    @property
    def as_of(self) -> date: ...
    @property
    def findings(self) -> Mapping[str, Sequence[EvidenceLike]]: ...
    @property
    def pain_conditions(self) -> Sequence[EvidenceLike]: ...
    @property
    def tpis(self) -> Sequence[ProcedureLike] | None: ...
    @property
    def medications(self) -> Sequence[MedicationLike] | None: ...
    @property
    def service_requests(self) -> Sequence[EvidenceLike]: ...
    @property
    def procedures(self) -> Sequence[EvidenceLike]: ...
    @property
    def pain_scores(self) -> Sequence[MeasurementLike]: ...

    def assessment_input(self, *, screen_all_regions: bool = False) -> dict[str, Any]: ...


class PartitionSource(Protocol):
    """One partition of a population: its patients' snapshots and what could not be placed."""

    def snapshots(self) -> Iterator[ScreeningSnapshot]:
        """Each patient of the partition once, in any order."""
        ...

    def unplaced(self) -> Mapping[str, int]:
        """Resources (by type) that name a patient with no Patient resource in the input.

        Complete only once ``snapshots`` is exhausted."""
        ...
