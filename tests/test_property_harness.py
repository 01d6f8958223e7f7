"""CI-sized batch of the issue 12 §7 harness (the long run: ``bench/properties.py``).

Each test draws a few hundred inputs; the properties are asserted inside the
``check_*`` functions of :mod:`tests.property_harness`. The CLI is driven on a sample of
the same inputs (exit 0 or 2, never a traceback).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from triggerpath.entrypoints.cli import app

from .property_harness import (
    assessment_cases,
    check_assessment,
    check_dose_case,
    check_plan,
    dose_cases,
    plan_cases,
    schema_assessments,
    schema_plans,
)

BATCH = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SMALL = settings(BATCH, max_examples=30)


@BATCH
@given(assessment_cases())
def test_structured_assessments_hold_the_safety_properties(data: dict[str, Any]) -> None:
    check_assessment(data)


@SMALL
@given(schema_assessments())
def test_schema_generated_assessments_never_raise(data: dict[str, Any]) -> None:
    check_assessment(data)


@BATCH
@given(plan_cases())
def test_plans_never_ready_with_an_unacknowledged_anticoagulant(data: dict[str, Any]) -> None:
    check_plan(data)


@SMALL
@given(schema_plans())
def test_schema_generated_plans_never_raise(data: dict[str, Any]) -> None:
    check_plan(data)


@BATCH
@given(dose_cases())
def test_dose_inputs_never_raise_or_hang(data: dict[str, Any]) -> None:
    check_dose_case(data)


@settings(SMALL, max_examples=25)
@given(st.one_of(assessment_cases(), schema_assessments()))
def test_cli_assess_exits_0_or_2(tmp_path_factory: Any, data: dict[str, Any]) -> None:
    f: Path = tmp_path_factory.mktemp("cli") / "a.json"
    f.write_text(json.dumps(data, default=str), encoding="utf-8")
    res = CliRunner().invoke(app, ["assess", str(f), "--format", "json"])
    assert res.exit_code in (0, 2), res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
