"""Population screening: the pathway run over FHIR records, codes only, nothing guessed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from triggerpath.adapters.fhir_r4.read import read_bundle
from triggerpath.entrypoints.cli import app
from triggerpath.knowledge import Knowledge
from triggerpath.services.screening import screen_patient, summarise

from .cds_helpers import bundle, condition, med_request, patient
from .conftest import SHARED

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
CPT = "http://www.ama-assn.org/go/cpt"
runner = CliRunner()


def tpi_procedure(n: int, pid: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "id": f"tpi-{n}",
        "status": "completed",
        "code": {"coding": [{"system": CPT, "code": "20552"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "performedDateTime": f"2026-{1 + n % 10:02d}-05",
    }


def test_anticoagulant_and_radiculopathy_come_from_the_codes(kb: Knowledge) -> None:
    snap = read_bundle(
        bundle(
            patient("p1"),
            condition("M54.50", rid="lbp"),
            condition("M54.16", rid="radic"),  # lumbar radiculopathy
            med_request("855332", "Warfarin Sodium 5 MG Oral Tablet"),
        ),
        kb,
        now=NOW,
    )
    row = screen_patient(snap, kb)
    assert row.relevant
    assert row.verdict == "not_indicated" and row.redirect == "epidural_steroid_injection"
    assert "anticoagulant" in row.cautions
    assert "S002.32" in row.statement_ids  # medication review: blood thinners


def test_stopped_orders_do_not_count(kb: Knowledge) -> None:
    snap = read_bundle(
        bundle(
            patient("p1"),
            condition("M54.50", rid="lbp"),
            med_request("855332", "Warfarin Sodium 5 MG Oral Tablet", status="stopped"),
        ),
        kb,
        now=NOW,
    )
    row = screen_patient(snap, kb)
    assert "anticoagulant" not in row.cautions
    # no examination in an EHR record: never guessed, so never tpi_appropriate
    assert row.verdict == "insufficient_findings" and row.needs > 0


def test_tpis_beyond_the_course_limit_are_flagged(kb: Knowledge) -> None:
    # S000.20: at most 8 treatments (chronic); a ninth TPI on record is over the limit
    for count, over in ((8, False), (9, True)):
        resources = [patient("p1"), condition("M54.50", rid="lbp")]
        resources += [tpi_procedure(n) for n in range(count)]
        row = screen_patient(read_bundle(bundle(*resources), kb, now=NOW), kb)
        assert row.tpis_on_record == count
        assert row.tpis_over_course_limit is over
        assert ("S000.20" in row.statement_ids) is over


def test_cli_formats_and_bad_path(tmp_path: Path) -> None:
    f = tmp_path / "p1.json"
    f.write_bytes(
        orjson.dumps(
            bundle(
                patient("p1"),
                condition("M54.50", rid="lbp"),
                med_request("855332", "Warfarin Sodium 5 MG Oral Tablet"),
            )
        )
    )
    res = runner.invoke(app, ["screen", str(f), "--format", "json", "--as-of", "2026-11-21"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["summary"]["patients"] == 1
    assert data["summary"]["cautions"]["anticoagulant"] == 1
    res = runner.invoke(app, ["screen", str(tmp_path), "--format", "csv"])
    assert res.exit_code == 0 and res.stdout.splitlines()[0].startswith("patient_id,")
    assert len(res.stdout.splitlines()) == 1  # one row per patient per measure they are in
    res = runner.invoke(app, ["screen", str(tmp_path / "nope.json")])
    assert res.exit_code == 2 and "does not exist" in res.stderr
    res = runner.invoke(app, ["screen", str(f), "--format", "xml"])
    assert res.exit_code == 2 and "--format" in res.stderr


@pytest.mark.shared_data
def test_synthea_population(kb: Knowledge) -> None:
    files = sorted((SHARED / "data" / "synthea-bundles").glob("*.json"))
    rows = [screen_patient(read_bundle(f.read_bytes(), kb, now=NOW), kb) for f in files]
    summary = summarise(rows)
    assert summary.patients == len(files) == 140
    assert summary.not_assessable == sum(r.verdict is None for r in rows)
    # an EHR record carries no examination: no record can reach tpi_appropriate
    assert "tpi_appropriate" not in summary.verdicts
    # every caution and coded finding cites its statements
    for r in rows:
        if r.cautions or r.findings:
            assert r.statement_ids
    assert summary.cautions["anticoagulant"] >= 1
