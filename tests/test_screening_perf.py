"""The screen's fast paths must never change what it reports.

``CodeFilter`` lets the partition pass write Conditions, Procedures and Observations the
FHIR reader would drop as bare counts, so that they are never read back or parsed again;
that is only sound if it drops nothing the reader would have used. These tests pin its
judgement on single resources and check, on a generated population with such resources
added, that the partition reader's snapshots and unplaced counts equal those of a pass
without the filter.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from bench.screen_data import write_population

from triggerpath.adapters.bulk import partition
from triggerpath.adapters.bulk.codes import code_filter
from triggerpath.adapters.bulk.partition import partition_sources, patient_of
from triggerpath.adapters.bulk.reader import FhirPartition
from triggerpath.adapters.bulk.sources import expand_inputs
from triggerpath.knowledge.loader import load_knowledge

NOW = datetime(2026, 11, 21, tzinfo=UTC)
CPT, ICD = "http://www.ama-assn.org/go/cpt", "http://hl7.org/fhir/sid/icd-10-cm"


def _resource(kind: str, system: str, code: Any, patient: str = "p1") -> dict[str, Any]:
    return {"resourceType": kind, "id": f"r-{kind}-{code}", "status": "completed",
            "subject": {"reference": f"Patient/{patient}"},
            "code": {"coding": [{"system": system, "code": code}]}}  # fmt: skip


def test_code_filter_skips_only_codes_no_value_set_holds() -> None:
    gate = code_filter(load_knowledge())
    # a trigger point injection (CPT 20552) is read; an unrelated code is not
    assert not gate.drops("Procedure", _resource("Procedure", CPT, "20552"))
    assert gate.drops("Procedure", _resource("Procedure", CPT, "99999"))
    # ICD-10-CM is matched by prefix, with or without the dot (M54.5 low back pain)
    assert not gate.drops("Condition", _resource("Condition", ICD, "M54.50"))
    assert not gate.drops("Condition", _resource("Condition", ICD, " m5450 "))
    # body height is read although it is in no value set
    assert not gate.drops("Observation", _resource("Observation", "http://loinc.org", "8302-2"))
    # what the filter cannot judge is kept; types not gated by code are always kept
    assert not gate.drops("Procedure", _resource("Procedure", CPT, 99999))
    odd = _resource("Procedure", CPT, "99999") | {"code": {"coding": {"code": "99999"}}}
    assert not gate.drops("Procedure", odd)
    assert not gate.drops("MedicationRequest", _resource("MedicationRequest", CPT, "99999"))
    # a code under a second coding still counts
    two = _resource("Condition", ICD, "Z00.00")
    two["code"]["coding"].append({"system": ICD, "code": "M54.5"})
    assert not gate.drops("Condition", two)


def _add(folder: Path, kind: str, resources: list[dict[str, Any]]) -> None:
    with (folder / f"{kind}.001.ndjson").open("ab") as fh:
        fh.writelines(orjson.dumps(r) + b"\n" for r in resources)


def test_partition_snapshots_equal_those_without_the_filter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb = load_knowledge()
    folder = write_population(tmp_path / "export", 40)
    pid = orjson.loads((folder / "Patient.000.ndjson").read_bytes().splitlines()[0])["id"]
    # procedures of no value set, as most of a real record: two of a known patient, one
    # of a patient absent from the export (it must still count as unplaced)
    dropped = [_resource("Procedure", "http://snomed.info/sct", "1", pid),
               _resource("Procedure", "http://snomed.info/sct", "3", pid),
               _resource("Procedure", "http://snomed.info/sct", "2", "absent")]  # fmt: skip
    _add(folder, "Procedure", dropped)
    sources = expand_inputs([str(folder)])
    runs = []
    for gate in (code_filter(kb), None):
        work = tmp_path / ("fast" if gate else "slow")
        partition_sources(sources, work / "g0000", 1, gate=gate)
        part = FhirPartition(work, 0, kb, NOW, None)
        spilled = (work / "g0000" / "p00000.ndjson").read_bytes()
        runs.append((list(part.snapshots()), part.unplaced(), spilled))
    (fast, fast_unplaced, fast_bytes), (slow, slow_unplaced, slow_bytes) = runs
    assert len(fast) == 40
    assert fast == slow
    assert fast_unplaced == slow_unplaced == {"Condition": 1, "Procedure": 1}
    # the filter did drop those lines (otherwise the comparison proves nothing)
    assert fast_bytes.count(b"\t!Procedure\t") >= 2
    assert b"\t!" not in slow_bytes
    assert len(fast_bytes) < len(slow_bytes)
    # counts held in memory are written out when there are many: the same answer
    monkeypatch.setattr(partition, "_DROPPED_HELD", 0)
    work = tmp_path / "flushed"
    partition_sources(sources, work / "g0000", 1, gate=code_filter(kb))
    part = FhirPartition(work, 0, kb, NOW, None)
    assert (list(part.snapshots()), part.unplaced()) == (fast, fast_unplaced)
    assert (work / "g0000" / "p00000.ndjson").read_bytes().count(b"\t!") > fast_bytes.count(b"\t!")


def test_partition_pass_places_each_resource_where_patient_of_says(tmp_path: Path) -> None:
    """The partition pass routes the common shape (``subject.reference``) inline; every
    shape must land where ``patient_of`` on the parsed resource puts it."""
    med: dict[str, Any] = {"medicationCodeableConcept": {"text": "aspirin"}, "status": "active"}
    shapes: list[dict[str, Any]] = [
        {"subject": {"reference": "Patient/p1"}},
        {"subject": {"reference": "urn:uuid:p2", "display": "P Two"}},
        {"subject": {"display": "x", "reference": "https://ehr.example/fhir/Patient/p3"}},
        {"subject": {"reference": "Group/g1"}},  # names no patient
        {"subject": {"reference": ""}, "patient": {"reference": "Patient/p4"}},
        {"subject": "Patient/p5", "patient": {"reference": "Patient/p5"}},
        {"patient": {"reference": "p6"}},
        {"focus": {"subject": {"reference": "Patient/p7"}}},  # nested only: no patient
        {},
    ]
    lines = [{"resourceType": "MedicationRequest", "id": f"m{i}", **shape, **med}
             for i, shape in enumerate(shapes)]  # fmt: skip
    (tmp_path / "MedicationRequest.000.ndjson").write_bytes(
        b"".join(orjson.dumps(r) + b"\n" for r in lines)
    )
    stats = partition_sources(expand_inputs([str(tmp_path)]), tmp_path / "work", 3)
    placed = {}
    for path in (tmp_path / "work").glob("p*.ndjson"):
        for line in path.read_bytes().splitlines():
            pid, _, body = line.partition(b"\t")
            placed[orjson.loads(body)["id"]] = pid.decode()
    expected = {r["id"]: patient_of(r) for r in lines}
    assert placed == {k: v for k, v in expected.items() if v is not None}
    assert set(placed.values()) == {"p1", "p2", "p3", "p4", "p5", "p6"}
    assert stats.no_patient == Counter({"MedicationRequest": 3})


@pytest.mark.parametrize(
    "pid",
    [
        "p1",
        "5dc526a5-2d7e",
        "a\tb",
        "trailing\n",
        "cr\r\nlf",
        "nul\x00",
        '"quoted',
        '"a\tb"',
        "\\t",
    ],
)
def test_spill_keys_hold_no_tab_or_newline_and_round_trip(pid: str) -> None:
    key = partition.spill_key(pid)
    assert b"\t" not in key and b"\n" not in key and b"\r" not in key
    assert partition.patient_of_key(key) == pid
    clean = pid.isprintable() and not pid.startswith('"')
    assert (key == pid.encode()) is clean  # clean ids are written exactly as before


def test_write_buffers_stay_within_budget_at_max_partitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A map task keeps P + 1 files open; at 1 MiB each, 1,024 partitions would hold 1 GiB
    of write buffers alone (issue 15 bounds a task's memory at 1 GiB)."""
    size, budget, top = partition.write_buffer, partition.WRITE_BUDGET, partition.MAX_PARTITIONS
    assert size(1) == size(63) == partition.WRITE_BUFFER == 1 << 20  # small P: unchanged
    assert size(top) == budget // (top + 1) == 65_472
    for parts in (1, 2, 63, 64, 100, 512, 1000, top):
        assert size(parts) * (parts + 1) <= budget <= 64 << 20
    opened: list[int] = []
    real_open = Path.open

    def recording_open(self: Path, mode: str = "r", buffering: int = -1, **kw: Any) -> Any:
        opened.append(buffering)
        return real_open(self, mode, buffering, **kw)

    monkeypatch.setattr(Path, "open", recording_open)
    writer = partition._Writer(tmp_path, top)
    try:
        pid = 0
        while len(writer.files) < top:  # a patient in every partition
            writer.route(f"p{pid}")
            pid += 1
        writer.shared(b'{"resourceType":"Medication","id":"m"}\n')
    finally:
        writer.close()
    assert len(opened) == top + 1 and set(opened) == {size(top)}
    assert sum(opened) <= budget
