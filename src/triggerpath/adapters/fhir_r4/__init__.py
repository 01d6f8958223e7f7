"""FHIR R4 (4.0.1) adapter: EHR records in, TriggerPath results out.

``read`` maps a patient's record (Bundle, CDS Hooks prefetch or Bulk Data
NDJSON) to a :class:`PatientSnapshot` and a partial assessment; ``write``
renders a :class:`~triggerpath.domain.recommendation.Recommendation` and the
records of a session as FHIR resources. The engine never sees FHIR.
"""

from triggerpath.adapters.fhir_r4.read import (
    FHIR_VERSION,
    PatientSnapshot,
    bulk_patient_ids,
    read_bulk_ndjson,
    read_bundle,
    snapshot_from_resources,
)
from triggerpath.services.ehr import Missing

__all__ = [
    "FHIR_VERSION",
    "Missing",
    "PatientSnapshot",
    "bulk_patient_ids",
    "read_bulk_ndjson",
    "read_bundle",
    "snapshot_from_resources",
]
