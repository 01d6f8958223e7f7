"""Screen one partition of a population: verdict rows and measure populations per patient.

A partition is whatever a :class:`PartitionSource` hands over (the bulk adapter's hash
partitions of an export); the result is plain data (lists, dicts, ints), so that it travels
between dask workers unchanged and adds up across partitions in any order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from triggerpath.knowledge.loader import Knowledge
from triggerpath.knowledge.measures import MeasureCatalog
from triggerpath.services.screening.facts import Period, patient_facts
from triggerpath.services.screening.measures import Tally, membership
from triggerpath.services.screening.ports import PartitionSource, ScreeningSnapshot
from triggerpath.services.screening.rows import ScreenRow, screen_patient


@dataclass
class PartitionResult:
    """Patient rows (JSON-ready, sorted by id), measure counts and unplaced resources."""

    patients: list[dict[str, Any]] = field(default_factory=list)
    tallies: dict[str, dict[str, int]] = field(default_factory=dict)
    unplaced: dict[str, int] = field(default_factory=dict)


def course_limit(kb: Knowledge) -> int:
    """The largest course the pathway plans (8 sessions, chronic; S000.20)."""
    return max(p.sessions_max for p in kb.pathway.duration_phases)


def _as_dict(row: ScreenRow) -> dict[str, Any]:
    """``dataclasses.asdict`` without its recursive deep copy (a row holds only scalars and
    lists of strings, so copying the lists gives the same dict at a fraction of the cost)."""
    return {
        f.name: list(value) if isinstance(value := getattr(row, f.name), list) else value
        for f in fields(row)
    }


def patient_result(
    snap: ScreeningSnapshot, kb: Knowledge, catalog: MeasureCatalog, period: Period
) -> dict[str, Any]:
    """One patient's screen row with the measure populations they are in and why."""
    row = _as_dict(screen_patient(snap, kb))
    facts = patient_facts(snap, catalog.parameters, period, course_limit(kb))
    row["measures"] = [
        {"id": m.id, "populations": list(member), "evidence": member}
        for m in catalog.measures
        if (member := membership(m, facts))
    ]
    return row


def screen_partition(
    source: PartitionSource, kb: Knowledge, catalog: MeasureCatalog, period: Period
) -> PartitionResult:
    """Every patient of ``source``: rows sorted by patient id, tallies, unplaced counts."""
    tallies = {m.id: Tally() for m in catalog.measures}
    rows = []
    for snap in source.snapshots():
        row = patient_result(snap, kb, catalog, period)
        for entry in row["measures"]:
            tallies[entry["id"]].add(entry["evidence"])
        rows.append(row)
    rows.sort(key=lambda r: str(r["patient_id"]))
    return PartitionResult(
        patients=rows,
        tallies={k: t.counts for k, t in tallies.items()},
        unplaced=dict(sorted(source.unplaced().items())),
    )
