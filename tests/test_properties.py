"""Safety properties over generated, schema-valid assessments (Hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from triggerpath.domain.engine import assess
from triggerpath.domain.validation import parse_assessment
from triggerpath.knowledge import Knowledge

from .conftest import AS_OF
from .strategies import KB, RED_FLAGS, assessments

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _assess(data: dict[str, Any], kb: Knowledge = KB) -> Any:
    return assess(parse_assessment(data, kb), kb, as_of=AS_OF)


@SETTINGS
@given(assessments())
def test_engine_never_raises_on_schema_valid_input_and_is_deterministic(
    data: dict[str, Any],
) -> None:
    first = _assess(data)
    second = _assess(data)
    assert first == second
    assert first.model_dump() == second.model_dump()


@SETTINGS
@given(assessments())
def test_a_red_flag_is_never_tpi_appropriate(data: dict[str, Any]) -> None:
    rec = _assess(data)
    if any(data["red_flags"].get(k) is True for k in RED_FLAGS):
        assert rec.verdict == "urgent_referral"
    assert not (
        rec.verdict == "tpi_appropriate" and any(data["red_flags"].get(k) for k in RED_FLAGS)
    )


@SETTINGS
@given(assessments())
def test_absolute_contraindication_is_never_tpi_appropriate(data: dict[str, Any]) -> None:
    rec = _assess(data)
    ci = data["contraindications"]
    absolute = any(
        ci.get(k) is True for k in ("bleeding_disorder", "injectate_allergy", "infection_at_site")
    )
    absolute = absolute or data["patient"].get("pregnant") is True
    if absolute:
        assert rec.verdict != "tpi_appropriate"
        assert rec.verdict in (
            "urgent_referral",
            "not_indicated",
            "insufficient_findings",
            "contraindicated",
        )


@SETTINGS
@given(assessments())
def test_every_reason_and_caution_cites_a_statement(data: dict[str, Any]) -> None:
    rec = _assess(data)
    assert rec.reasons
    for r in [*rec.reasons, *rec.findings, *rec.cautions]:
        assert r.statement_ids and all(s in KB.statements for s in r.statement_ids)


@SETTINGS
@given(assessments())
def test_tpi_appropriate_only_with_complete_screen(data: dict[str, Any]) -> None:
    rec = _assess(data)
    if rec.verdict == "tpi_appropriate":
        assert not [n for n in rec.needs if n.blocking]
        assert rec.comprehensive_care and rec.before_procedure
        assert rec.redirect is None
