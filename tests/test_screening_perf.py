"""The screen's fast paths must never change what it reports.

``CodeFilter`` lets the bulk reader skip Conditions, Procedures and Observations without
parsing them; that is only sound if it skips nothing the FHIR reader would have used. These
tests pin its judgement on single lines and check, on a generated population, that the
partition reader's snapshots equal the reader run on every resource unfiltered.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from bench.screen_data import write_population

from triggerpath.adapters.bulk.partition import partition_sources
from triggerpath.adapters.bulk.reader import CodeFilter, FhirPartition, code_filter
from triggerpath.adapters.bulk.sources import expand_inputs
from triggerpath.knowledge.loader import load_knowledge

NOW = datetime(2026, 11, 21, tzinfo=UTC)


def _line(kind: str, system: str, code: str) -> bytes:
    return orjson.dumps(
        {"resourceType": kind, "id": "r1", "subject": {"reference": "Patient/p1"},
         "status": "completed", "code": {"coding": [{"system": system, "code": code}]}}
    )  # fmt: skip


def test_code_filter_skips_only_codes_no_value_set_holds() -> None:
    gate = code_filter(load_knowledge())
    cpt, icd = "http://www.ama-assn.org/go/cpt", "http://hl7.org/fhir/sid/icd-10-cm"
    # a trigger point injection (CPT 20552) is read; an unrelated code is not
    assert not gate.ignorable(b"Procedure", _line("Procedure", cpt, "20552"))
    assert gate.ignorable(b"Procedure", _line("Procedure", cpt, "99999"))
    # ICD-10-CM is matched by prefix, with or without the dot (M54.5 low back pain)
    assert not gate.ignorable(b"Condition", _line("Condition", icd, "M54.50"))
    assert not gate.ignorable(b"Condition", _line("Condition", icd, " m5450 "))
    # body height is read although it is in no value set
    assert not gate.ignorable(b"Observation", _line("Observation", "http://loinc.org", "8302-2"))
    # an escape anywhere means the bytes are not judged; ungated types are always parsed
    escaped = _line("Procedure", cpt, "99999").replace(b'"r1"', b'"r\\u0031"')
    assert not gate.ignorable(b"Procedure", escaped)
    assert not gate.ignorable(b"MedicationRequest", _line("MedicationRequest", cpt, "99999"))


def test_partition_snapshots_equal_those_without_the_filter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb = load_knowledge()
    folder = write_population(tmp_path / "export", 40)
    work = tmp_path / "work"
    partition_sources(expand_inputs([str(folder)]), work / "g0000", 1)
    part = work / "g0000" / "p00000.ndjson"
    pid = part.read_bytes().partition(b"\t")[0]
    with part.open("ab") as fh:  # a procedure of no value set, as most of a real record
        fh.write(pid + b"\t" + _line("Procedure", "http://snomed.info/sct", "1") + b"\n")
    fast = list(FhirPartition(work, 0, kb, NOW, None).snapshots())
    monkeypatch.setattr(CodeFilter, "ignorable", lambda self, kind, body: False)
    slow = list(FhirPartition(work, 0, kb, NOW, None).snapshots())
    assert len(fast) == 40
    assert fast == slow
    monkeypatch.undo()
    # the filter did skip that line (otherwise the comparison proves nothing)
    gate = code_filter(kb)
    assert gate.ignorable(b"Procedure", part.read_bytes().splitlines()[-1])
