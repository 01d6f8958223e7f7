"""The hazard log (docs/safety/hazard-log.yaml) is complete and traced to tests that exist.

A hazard without a test, or a test id that names no collected test, fails here. Node ids are
checked against pytest's own collection of only the files the log names (``--collect-only``
in a subprocess: no test runs, no fixture is set up), so the check stays cheap.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from triggerpath.adapters.hazard_log import HazardLog, load_log, node_matches, read_junit
from triggerpath.entrypoints.cli import app

from .conftest import ROOT

#: hazards the issue names (issue 11 §7 and the kernel-web brief), by a word of their title
REQUIRED = (
    "dose",
    "patient",
    "side",
    "red flag",
    "contraindication",
    "anticoagulant",
    "stale",
    "lost",
    "not recorded",
    "session",
    "impersonation",
    "logs",
)


@pytest.fixture(scope="module")
def log() -> HazardLog:
    return load_log()


@pytest.fixture(scope="module")
def collected(log: HazardLog) -> set[str]:
    files = sorted({t.split("::", 1)[0] for t in log.tests if (ROOT / t.split("::")[0]).exists()})
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    ids = {line.strip() for line in res.stdout.splitlines() if "::" in line}
    assert ids, res.stdout[-2000:] + res.stderr[-2000:]
    return ids


def test_at_least_twelve_hazards_each_with_tested_mitigations(log: HazardLog) -> None:
    assert len(log.hazards) >= 12
    ids = Counter(h.id for h in log.hazards)
    assert [i for i, n in ids.items() if n > 1] == []
    for h in log.hazards:
        assert h.mitigations and all(m.tests for m in h.mitigations), h.id


def test_the_hazards_the_issue_names_are_in_the_log(log: HazardLog) -> None:
    text = " ".join(f"{h.title} {h.cause}".lower() for h in log.hazards)
    assert [w for w in REQUIRED if w not in text] == []


def test_every_named_test_exists(log: HazardLog, collected: set[str]) -> None:
    missing = [t for t in log.tests if not node_matches(t, collected)]
    assert missing == [], f"the hazard log names tests that do not exist: {missing}"


def test_a_missing_test_or_an_untested_hazard_is_caught(tmp_path: Path, log: HazardLog) -> None:
    assert not node_matches("tests/test_dosing.py::test_no_such_test", {"tests/x.py::test_a"})
    assert node_matches("tests/x.py::test_a", {"tests/x.py::test_a[sqlite]"})
    bad = tmp_path / "log.yaml"
    raw = log.model_dump(mode="json")
    raw["hazards"][0]["mitigations"][0]["tests"] = []
    import yaml

    bad.write_text(yaml.safe_dump(raw))
    res = CliRunner().invoke(app, ["safety", "report", "--log", str(bad)])
    assert res.exit_code == 2
    assert "hazards.0.mitigations.0.tests" in res.output


def test_safety_report_shows_each_tests_last_result(tmp_path: Path, log: HazardLog) -> None:
    first = log.hazards[0].mitigations[0].tests[0]
    module, name = first.split("::")
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest">'
        f'<testcase classname="{module.removesuffix(".py").replace("/", ".")}" name="{name}"/>'
        '<testcase classname="tests.test_x" name="test_y[a]"><failure message="x"/></testcase>'
        "</testsuite></testsuites>"
    )
    results = read_junit(junit)
    assert results.of(first) == "passed"
    assert results.of("tests/test_x.py::test_y") == "failed"
    res = CliRunner().invoke(app, ["safety", "report", "--results", str(junit)])
    assert res.exit_code == 0, res.output
    assert f"passed   {first}" in res.output
    assert "not run" in res.output  # the others did not run in this fake report
    page = tmp_path / "log.md"
    res = CliRunner().invoke(
        app, ["safety", "report", "-f", "markdown", "--results", str(junit), "-o", str(page)]
    )
    assert res.exit_code == 0
    assert page.read_text().count("## HAZ-") == len(log.hazards)
