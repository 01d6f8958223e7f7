"""What population screening reads of a patient's record, as ports (``typing.Protocol``).

The service never imports an adapter: a patient's record is the one
:class:`~triggerpath.services.ehr.PatientSnapshot` the FHIR R4 adapter builds and the CDS
services read too (``ScreeningSnapshot`` here, its coded entries ``EvidenceLike``), and a
partition source (the bulk adapter) hands snapshots over through :class:`PartitionSource`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

from triggerpath.services.ehr import Evidence as EvidenceLike
from triggerpath.services.ehr import PatientSnapshot as ScreeningSnapshot

__all__ = ["EvidenceLike", "PartitionSource", "ScreeningSnapshot"]


class PartitionSource(Protocol):
    """One partition of a population: its patients' snapshots and what could not be placed."""

    def snapshots(self) -> Iterator[ScreeningSnapshot]:
        """Each patient of the partition once, in any order."""
        ...

    def unplaced(self) -> Mapping[str, int]:
        """Resources (by type) that name a patient with no Patient resource in the input.

        Complete only once ``snapshots`` is exhausted."""
        ...
