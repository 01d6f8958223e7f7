"""Wrong-shape files get one message saying what the file looks like and which command reads
it (not one "unknown field" per key); a file of the right shape still gets its errors field
by field, each naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from triggerpath.entrypoints.cli import app

REPO = Path(__file__).resolve().parents[1]
PLAN = "examples/plans/ql_low_back_ok.json"
COURSE = "examples/courses/failing_low_back.json"
ASSESSMENT = "examples/assessments/ql_chronic_low_back.json"
BUNDLE = "examples/fhir/bundles/radicular.json"
runner = CliRunner()


def run(*argv: str) -> tuple[int, str]:
    res = runner.invoke(app, list(argv), catch_exceptions=False)
    return res.exit_code, res.output


@pytest.mark.parametrize(
    ("command", "file", "looks_like", "reader"),
    [
        ("course", PLAN, "a procedure plan request", "triggerpath plan FILE"),
        ("plan", COURSE, "an episode", "triggerpath course FILE"),
        ("assess", PLAN, "a procedure plan request", "triggerpath plan FILE"),
        ("assess", COURSE, "an episode", "triggerpath course FILE"),
        ("plan", ASSESSMENT, "an assessment", "triggerpath assess FILE"),
        ("course", ASSESSMENT, "an assessment", "triggerpath assess FILE"),
        ("assess", BUNDLE, "a FHIR Bundle", "triggerpath screen PATH"),
    ],
)
def test_wrong_shape_says_what_the_file_is_and_who_reads_it(
    command: str, file: str, looks_like: str, reader: str
) -> None:
    code, output = run(command, str(REPO / file))
    assert code == 2
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    assert lines[0] == "Invalid input"
    assert len(lines) == 2, "one problem, not a list of unknown fields"
    assert lines[1].startswith("FILE: ")  # the field is still named
    assert f"looks like {looks_like}" in lines[1]
    assert f"(read by '{reader}')" in lines[1]
    assert f"'triggerpath {command} FILE' reads" in lines[1]
    assert "unknown field" not in output


def test_unrecognisable_object_and_array(tmp_path: Path) -> None:
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps({"foo": 1, "bar": 2}), encoding="utf-8")
    code, output = run("assess", str(odd))
    assert code == 2
    assert "does not look like an assessment file (top-level keys: bar, foo)" in output
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]", encoding="utf-8")
    code, output = run("course", str(listed))
    assert code == 2
    assert "holds a JSON array; 'triggerpath course FILE' reads an episode" in output


def test_right_shape_still_names_each_bad_field(tmp_path: Path) -> None:
    data = json.loads((REPO / ASSESSMENT).read_text(encoding="utf-8"))
    data["patient"]["age_years"] = "old"
    data["pain"]["nrs"] = 11
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    code, output = run("assess", str(bad))
    assert code == 2
    assert "patient.age_years:" in output
    assert "pain.nrs:" in output
    assert "looks like" not in output
