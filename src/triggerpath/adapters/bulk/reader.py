"""A hash partition of the work directory as a source of patient snapshots (the port).

Implements :class:`triggerpath.services.screening.ports.PartitionSource`: it groups the
partition's lines by patient id (the prefix the partitioner wrote, so without parsing),
then parses one patient at a time and maps it with the FHIR R4 adapter, so memory is the
partition's bytes plus one patient's resources. Shared ``Medication`` resources are added
to a patient only when one of their orders references them. A group whose patient has no
Patient resource anywhere in the input is counted by resource type, never screened.

Most Conditions, Procedures and Observations of a real record carry no code of any value
set, and the FHIR reader drops them unread; :class:`CodeFilter` recognises those from their
bytes (every ``"code": "..."`` string in the line, normalised as the value-set index does)
so that they are neither parsed nor mapped. It only ever skips a resource the reader would
have ignored, so the output is unchanged; anything it cannot judge safely is parsed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from triggerpath.adapters.bulk.partition import partition_files, shared_files
from triggerpath.adapters.fhir_r4.read import (
    LOINC_HEIGHT,
    PatientSnapshot,
    snapshot_from_resources,
)
from triggerpath.knowledge.loader import Knowledge
from triggerpath.knowledge.valuesets import ValueSetIndex

_PREFIX = b'{"resourceType":"'
# The reader maps these types only when a coding of ``code`` hits a value set (or, for an
# Observation, is the LOINC body height); a line whose codes can hit nothing is skipped.
_CODE_GATED = frozenset({b"Condition", b"Procedure", b"Observation"})
_CODE_STRING = re.compile(rb'"code"\s*:\s*"([^"\\]*)"')


class CodeFilter:
    """Every code the value-set index can match, as bytes, built once per knowledge load."""

    def __init__(self, index: ValueSetIndex) -> None:
        self.exact = frozenset(code.encode() for _, code in index.exact) | {
            LOINC_HEIGHT[1].encode()
        }
        self.prefix = frozenset(code.encode() for _, code in index.prefix)
        self.longest = max((len(c) for c in self.prefix), default=0)
        self._seen: dict[bytes, bool] = {}  # a population repeats the same few codes

    def _may_match(self, code: bytes) -> bool:
        # normalise(): stripped, and for ICD-10-CM without dots and upper-case.
        for key in {code.strip(), code.strip().replace(b".", b"").upper()}:
            if key in self.exact:
                return True
            if any(key[:end] in self.prefix for end in range(1, min(len(key), self.longest) + 1)):
                return True
        return False

    def ignorable(self, kind: bytes | None, body: bytes) -> bool:
        """True only when the reader would certainly drop this line: a code-gated type
        whose code strings can hit no value set (escapes are never judged: parsed)."""
        if kind not in _CODE_GATED or b"\\" in body:
            return False
        seen = self._seen
        for code in _CODE_STRING.findall(body):
            hit = seen.get(code)
            if hit is None:
                if len(seen) > 100_000:
                    seen.clear()
                hit = seen[code] = self._may_match(code)
            if hit:
                return False
        return True


_FILTERS: dict[int, CodeFilter] = {}


def code_filter(kb: Knowledge) -> CodeFilter:
    """The knowledge base's :class:`CodeFilter`, memoised (knowledge is immutable)."""
    index = kb.valuesets.index
    found = _FILTERS.get(id(index))
    if found is None or len(_FILTERS) > 8:
        _FILTERS.clear()
        found = _FILTERS[id(index)] = CodeFilter(index)
    return found


def _kind(body: bytes) -> bytes | None:
    if body.startswith(_PREFIX):
        end = body.find(b'"', len(_PREFIX))
        if end > 0:
            return body[len(_PREFIX) : end]
    return None


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
            with path.open("rb") as fh:
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

    def _parse(self, bodies: list[bytes]) -> tuple[list[dict[str, Any]], list[str]]:
        """The group's resources worth mapping, and the types of those skipped unparsed."""
        gate = code_filter(self.kb)
        resources: list[dict[str, Any]] = []
        skipped: list[str] = []
        for body in bodies:
            kind = _kind(body)
            if kind in _CODE_GATED and gate.ignorable(kind, body):
                assert kind is not None
                skipped.append(kind.decode())
            else:
                resources.append(orjson.loads(body))
        return resources, skipped

    def snapshots(self) -> Iterator[PatientSnapshot]:
        groups = self._groups()
        meds = self._shared()
        for raw_pid in sorted(groups):
            pid = raw_pid.decode()
            resources, skipped = self._parse(groups.pop(raw_pid))
            if not any(r.get("resourceType") == "Patient" for r in resources):
                self._unplaced.update(str(r.get("resourceType")) for r in resources)
                self._unplaced.update(skipped)
                continue
            wanted = _medication_refs(resources) & meds.keys() if meds else set()
            resources += [meds[ref] for ref in sorted(wanted)]
            yield snapshot_from_resources(
                resources, self.kb, now=self.now, patient_id=pid, available=self.available
            )

    def unplaced(self) -> Mapping[str, int]:
        return dict(self._unplaced)
