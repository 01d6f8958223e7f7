"""The ports the CDS services need: what they read from a patient record and write as FHIR.

The services never import the FHIR adapter (layers: adapters are reached only from the
entrypoints and the composition root). What a card reads of the EHR record is the one
:class:`~triggerpath.services.ehr.PatientSnapshot` that population screening reads too
(named here as the CDS modules know its parts: a ``Record`` of ``EvidenceItem``,
``PastTpi`` and ``Given`` entries); :class:`Fhir` is implemented by
:mod:`triggerpath.adapters.cds_fhir`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

from triggerpath.knowledge.loader import Knowledge
from triggerpath.services.ehr import Administration as Given
from triggerpath.services.ehr import Evidence as EvidenceItem
from triggerpath.services.ehr import PatientSnapshot as Record
from triggerpath.services.ehr import ProcedureEntry as PastTpi

__all__ = ["EvidenceItem", "Fhir", "Given", "PastTpi", "Record"]


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
