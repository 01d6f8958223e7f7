"""The clinical hazard log (``docs/safety/hazard-log.yaml``) and the last test results.

The log is DCB0129-style: hazards with cause, effect, severity, likelihood and mitigations,
each mitigation naming the pytest node ids that prove it. It is read here (validated, so a
malformed entry is an error naming its place), and joined with the last test run's results
from a JUnit XML file (``pytest --junitxml=test-artifacts/junit.xml``), so the safety
report shows, per mitigation, whether its tests passed when they last ran.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from triggerpath.errors import FieldProblem, InvalidInput

ROOT = Path(__file__).resolve().parents[3]
LOG = ROOT / "docs" / "safety" / "hazard-log.yaml"
JUNIT = ROOT / "test-artifacts" / "junit.xml"
Severity = Literal["minor", "significant", "considerable", "major", "catastrophic"]
Likelihood = Literal["very_low", "low", "medium", "high", "very_high"]
NODE_ID = r"^tests/[\w/]+\.py::\w+$"
Result = Literal["passed", "failed", "skipped", "not run"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Mitigation(_Strict):
    text: str = Field(min_length=5)
    tests: list[str] = Field(min_length=1, description="pytest node ids (path::name)")


class Likelihoods(_Strict):
    initial: Likelihood
    residual: Likelihood


class Hazard(_Strict):
    id: str = Field(pattern=r"^HAZ-\d{3}$")
    title: str = Field(min_length=5)
    cause: str = Field(min_length=5)
    effect: str = Field(min_length=5)
    severity: Severity
    likelihood: Likelihoods
    mitigations: list[Mitigation] = Field(min_length=1)

    @property
    def tests(self) -> list[str]:
        return list(dict.fromkeys(t for m in self.mitigations for t in m.tests))


class HazardLog(_Strict):
    format: Literal[1]
    standard: str
    scales: dict[str, list[str]]
    hazards: list[Hazard] = Field(min_length=1)

    @property
    def tests(self) -> list[str]:
        return list(dict.fromkeys(t for h in self.hazards for t in h.tests))


def load_log(path: Path = LOG) -> HazardLog:
    """The hazard log, validated (problems name the entry and field)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput.single("--log", f"{path} does not exist") from None
    except yaml.YAMLError as exc:
        raise InvalidInput.single("--log", f"{path} is not valid YAML: {exc}") from None
    try:
        return HazardLog.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(
            [
                FieldProblem(".".join(str(x) for x in e["loc"]) or "hazard-log", e["msg"])
                for e in exc.errors()
            ]
        ) from None


def node_matches(node_id: str, collected: set[str]) -> bool:
    """Whether a log node id names a collected test (any parametrisation of it)."""
    return node_id in collected or any(c.startswith(node_id + "[") for c in collected)


@dataclass(frozen=True)
class RunResults:
    """The outcome of each test case in the last run, by pytest node id (params stripped)."""

    source: Path | None
    outcomes: dict[str, Result]

    def of(self, node_id: str) -> Result:
        return self.outcomes.get(node_id, "not run")


def _node_id(case: ET.Element) -> str:
    """``tests/x.py::name`` from a JUnit testcase (classname ``tests.x``, name ``name[p]``)."""
    module = case.get("classname", "").replace(".", "/")
    name = case.get("name", "").split("[", 1)[0]
    return f"{module}.py::{name}"


def _outcome(case: ET.Element) -> Result:
    if case.find("failure") is not None or case.find("error") is not None:
        return "failed"
    if case.find("skipped") is not None:
        return "skipped"
    return "passed"


def read_junit(path: Path = JUNIT) -> RunResults:
    """Per-test outcomes from a JUnit XML report; a parametrised test fails if any case did."""
    if not path.exists():
        return RunResults(None, {})
    try:
        tree = ET.parse(path)
    except ET.ParseError as exc:
        raise InvalidInput.single("--results", f"{path} is not valid JUnit XML: {exc}") from None
    rank = {"failed": 3, "skipped": 1, "passed": 2}
    outcomes: dict[str, Result] = {}
    for case in tree.iter("testcase"):
        node, result = _node_id(case), _outcome(case)
        old = outcomes.get(node)
        if old is None or rank[result] > rank[old]:
            outcomes[node] = result
    return RunResults(path, outcomes)
