"""A hash partition of the work directory as a source of patient snapshots (the port).

Implements :class:`triggerpath.services.screening.ports.PartitionSource`: it groups the
partition's lines by patient id (the prefix the partitioner wrote, so without parsing),
then parses one patient at a time and maps it with the FHIR R4 adapter, so memory is the
partition's bytes plus one patient's resources. Shared ``Medication`` resources are added
to a patient only when one of their orders references them. A group whose patient has no
Patient resource anywhere in the input is counted by resource type, never screened.

Resources the partition pass's code filter (``adapters.bulk.codes``) found the reader would
drop arrive as counts, ``<pid>\t!<type>\t<n>``: added to ``unplaced``, never parsed. Every
other line is JSON the partition pass has already parsed once (so it is valid). A ``<pid>``
starting with ``"`` is an id with a control character, JSON-encoded (``spill_key``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from triggerpath.adapters.bulk.partition import (
    READ_BUFFER,
    SKIPPED,
    partition_files,
    patient_of_key,
    shared_files,
)
from triggerpath.adapters.fhir_r4.read import PatientSnapshot, snapshot_from_resources
from triggerpath.knowledge.loader import Knowledge

_SKIPPED = SKIPPED[0]  # the first byte of a skipped resource's line (JSON starts with {)


def _medication_refs(resources: list[dict[str, Any]]) -> set[str]:
    refs = set()
    for r in resources:
        ref = r.get("medicationReference")
        ref = ref.get("reference") if isinstance(ref, dict) else None
        if isinstance(ref, str):
            refs.add(ref)
    return refs


class FhirPartition:
    """Partition ``index`` of the work directory ``work``, read as of ``now``."""

    def __init__(
        self,
        work: Path,
        index: int,
        kb: Knowledge,
        now: datetime,
        available: frozenset[str] | None,
    ) -> None:
        self.work, self.index, self.kb, self.now = work, index, kb, now
        self.available = available
        self._unplaced: Counter[str] = Counter()

    def _groups(self) -> dict[bytes, list[bytes]]:
        groups: dict[bytes, list[bytes]] = {}
        for path in partition_files(self.work, self.index):
            with path.open("rb", buffering=READ_BUFFER) as fh:
                for line in fh:
                    pid, _, body = line.partition(b"\t")
                    groups.setdefault(pid, []).append(body)
        return groups

    def _shared(self) -> dict[str, dict[str, Any]]:
        meds: dict[str, dict[str, Any]] = {}
        for path in shared_files(self.work):
            with path.open("rb") as fh:
                for line in fh:
                    r = orjson.loads(line)
                    if isinstance(r.get("id"), str):
                        meds[f"Medication/{r['id']}"] = meds[f"urn:uuid:{r['id']}"] = r
        return meds

    def snapshots(self) -> Iterator[PatientSnapshot]:
        groups = self._groups()
        meds = self._shared()
        loads = orjson.loads
        for raw_pid in sorted(groups):
            lines = groups.pop(raw_pid)
            resources = [loads(line) for line in lines if line[0] != _SKIPPED]
            if not any(r.get("resourceType") == "Patient" for r in resources):
                self._unplaced.update(str(r.get("resourceType")) for r in resources)
                for ln in lines:
                    if ln[0] == _SKIPPED:
                        kind, _, count = ln[1:].partition(b"\t")
                        self._unplaced[kind.decode()] += int(count)
                continue
            wanted = _medication_refs(resources) & meds.keys() if meds else set()
            resources += [meds[ref] for ref in sorted(wanted)]
            yield snapshot_from_resources(
                resources, self.kb, now=self.now, patient_id=patient_of_key(raw_pid),
                available=self.available,
            )  # fmt: skip

    def unplaced(self) -> Mapping[str, int]:
        return dict(self._unplaced)
