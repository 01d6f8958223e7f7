"""The command line: exit codes, formats, messages naming the field."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from triggerpath.entrypoints.cli import app

from .conftest import EXAMPLES

runner = CliRunner()


def test_assess_json_has_verdict_first() -> None:
    res = runner.invoke(
        app,
        [
            "assess",
            str(EXAMPLES / "sciatica_below_knee.json"),
            "--format",
            "json",
            "--as-of",
            "2026-11-21",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert next(iter(data)) == "verdict"
    assert data["verdict"] == "not_indicated"
    assert data["redirect"] == "epidural_steroid_injection"
    assert data["as_of"] == "2026-11-21"
    assert all(r["statement_ids"] for r in data["reasons"])


def test_assess_text_leads_with_the_verdict() -> None:
    res = runner.invoke(app, ["assess", str(EXAMPLES / "warfarin.json")])
    assert res.exit_code == 0, res.output
    first_lines = res.stdout.strip().splitlines()[:3]
    assert any("TPI_APPROPRIATE" in line for line in first_lines)
    assert "S002.32" in res.stdout  # the anticoagulant caution cites its statement


def test_bad_input_exits_2_naming_the_field(tmp_path: Path) -> None:
    data = json.loads((EXAMPLES / "warfarin.json").read_text())
    data["pain"]["nrs"] = 14
    data["trigger_points"][0]["muscle"] = "biceps"
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(data))
    res = runner.invoke(app, ["assess", str(f)])
    assert res.exit_code == 2
    assert "pain.nrs" in res.stderr
    assert "Traceback" not in res.output + res.stderr


def test_malformed_json_and_missing_file(tmp_path: Path) -> None:
    f = tmp_path / "broken.json"
    f.write_text("{ not json")
    res = runner.invoke(app, ["assess", str(f)])
    assert res.exit_code == 2 and "not valid JSON" in res.stderr
    res = runner.invoke(app, ["assess", str(tmp_path / "nope.json")])
    assert res.exit_code == 2 and "does not exist" in res.stderr
    res = runner.invoke(app, ["assess", str(EXAMPLES / "warfarin.json"), "--as-of", "21/11/2026"])
    assert res.exit_code == 2 and "--as-of" in res.stderr


def test_schema_assessment_lists_muscles() -> None:
    res = runner.invoke(app, ["schema", "assessment"])
    assert res.exit_code == 0
    schema = json.loads(res.stdout)
    muscles = schema["$defs"]["TriggerPointFinding"]["properties"]["muscle"]["enum"]
    assert "quadratus_lumborum" in muscles


def test_knowledge_browsing() -> None:
    for cmd in (["knowledge", "muscles"], ["knowledge", "evidence"], ["knowledge", "pathway"]):
        res = runner.invoke(app, cmd)
        assert res.exit_code == 0, (cmd, res.output)
    res = runner.invoke(app, ["knowledge", "show", "S000.22"])
    assert res.exit_code == 0 and json.loads(res.stdout)["id"] == "S000.22"
    res = runner.invoke(app, ["knowledge", "show", "quadratus_lumborum"])
    assert json.loads(res.stdout)["needle"]["length_mm_max"] == 90
    res = runner.invoke(app, ["knowledge", "show", "lidocaine"])
    assert res.exit_code == 0 and json.loads(res.stdout)["id"] == "lidocaine"
    res = runner.invoke(app, ["knowledge", "show", "odi"])
    assert res.exit_code == 0 and json.loads(res.stdout)["id"] == "odi"
    res = runner.invoke(app, ["knowledge", "show", "nothing-here"])
    assert res.exit_code == 2


def test_demo_runs_every_example() -> None:
    res = runner.invoke(app, ["demo", str(EXAMPLES), "--as-of", "2026-11-21"])
    assert res.exit_code == 0, res.output
    assert "0 differ from expected" in res.stdout
