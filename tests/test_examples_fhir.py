"""The shipped synthetic FHIR examples (``examples/fhir/``): generated, valid R4, and each
patient shows what it was made for (a TPI candidate, an anticoagulant caution, a radicular
redirect, a red flag), read as Bundles and as a Bulk Data export alike. Needs no ../shared.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from triggerpath.adapters.fhir_r4.read import bulk_patient_ids, read_bulk_ndjson, read_bundle
from triggerpath.knowledge import Knowledge, load_knowledge
from triggerpath.services.screening import ScreenRow, screen_patient

from .fhir_schema import assert_valid

FHIR = Path(__file__).resolve().parents[1] / "examples" / "fhir"
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)  # the README's --as-of
PATIENTS = ("anticoagulated", "radicular", "red-flag", "tpi-candidate")


@pytest.fixture(scope="module")
def kb() -> Knowledge:
    return load_knowledge()


def test_files_are_what_the_generator_writes() -> None:
    proc = subprocess.run(
        [sys.executable, str(FHIR / "generate.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def _all_resources() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted((FHIR / "bundles").glob("*.json")):
        b = json.loads(path.read_text(encoding="utf-8"))
        found.append(b)
        found += [e["resource"] for e in b["entry"]]
    for path in sorted((FHIR / "bulk").glob("*.ndjson")):
        found += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for path in sorted((FHIR / "cds").glob("*.json")):
        request = json.loads(path.read_text(encoding="utf-8"))
        found += list(request["prefetch"].values())
        if "draftOrders" in request["context"]:
            found.append(request["context"]["draftOrders"])
    return found


def test_every_resource_is_valid_fhir_r4() -> None:
    resources = _all_resources()
    assert len(resources) > 40
    for resource in resources:
        assert_valid(resource)


def _rows(kb: Knowledge) -> tuple[dict[str, ScreenRow], dict[str, ScreenRow]]:
    bundles = {
        p.stem: screen_patient(read_bundle(p.read_bytes(), kb, now=NOW), kb)
        for p in (FHIR / "bundles").glob("*.json")
    }
    bulk = FHIR / "bulk"
    ndjson = {
        pid: screen_patient(read_bulk_ndjson(bulk, pid, kb, now=NOW), kb)
        for pid in bulk_patient_ids(bulk)
    }
    return bundles, ndjson


def test_each_patient_shows_what_it_was_made_for(kb: Knowledge) -> None:
    bundles, ndjson = _rows(kb)
    assert sorted(bundles) == sorted(ndjson) == list(PATIENTS)
    for rows in (bundles, ndjson):
        candidate, anticoagulated = rows["tpi-candidate"], rows["anticoagulated"]
        assert candidate.relevant and candidate.redirect is None
        assert not candidate.findings and not candidate.cautions  # nothing against a TPI
        assert "anticoagulant" in anticoagulated.cautions
        assert rows["radicular"].verdict == "not_indicated"
        assert rows["radicular"].redirect == "epidural_steroid_injection"
        assert rows["red-flag"].verdict == "urgent_referral"
        assert "red_flag.cauda_equina" in rows["red-flag"].findings


def test_bundle_and_bulk_read_the_same_record(kb: Knowledge) -> None:
    bundles, ndjson = _rows(kb)
    for pid in PATIENTS:
        assert bundles[pid] == ndjson[pid], pid
