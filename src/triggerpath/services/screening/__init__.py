"""Population screening for quality teams: the pathway and quality measures over records.

``rows`` screens one patient (verdict, coded findings, cautions); ``facts`` and ``measures``
place the patient in the populations of the measures of ``knowledge/data/measures.yaml``;
``partition`` does both for one partition of a population. Snapshots come in through the
ports of ``ports`` (the FHIR adapter implements them); nothing here reads files or a clock.
"""

from triggerpath.services.screening.facts import Period, patient_facts
from triggerpath.services.screening.measures import (
    Tally,
    measure_summary,
    membership,
    merge_tallies,
)
from triggerpath.services.screening.partition import (
    PartitionResult,
    course_limit,
    patient_result,
    screen_partition,
)
from triggerpath.services.screening.ports import PartitionSource, ScreeningSnapshot
from triggerpath.services.screening.rows import ScreenRow, ScreenSummary, screen_patient, summarise

__all__ = [
    "PartitionResult",
    "PartitionSource",
    "Period",
    "ScreenRow",
    "ScreenSummary",
    "ScreeningSnapshot",
    "Tally",
    "course_limit",
    "measure_summary",
    "membership",
    "merge_tallies",
    "patient_facts",
    "patient_result",
    "screen_partition",
    "screen_patient",
    "summarise",
]
