"""Issue 12 §3-§5: bounded numbers, one error path, additive toxicity over the ledger.

No input may hang or crash an entry point: numbers are bounded in size and precision
before any exact arithmetic (``Decimal("1e-999999999")`` used to make the dose check
print a billion-digit number), values that round to zero are refused naming the field,
and every bad input is exit 2 / an ``InvalidInput`` naming the field, never a traceback.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from triggerpath.domain.dosing import check_dose, parse_dose_request
from triggerpath.domain.jsontext import loads
from triggerpath.domain.planning import parse_plan_request, plan_from_request
from triggerpath.domain.policy import Policy
from triggerpath.domain.validation import parse_assessment
from triggerpath.entrypoints.cli import app
from triggerpath.errors import InvalidInput
from triggerpath.knowledge import Knowledge

from .conftest import AS_OF, example

runner = CliRunner()


def dose_data(**change: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "weight_kg": 80,
        "solutions": [{"agent": "lidocaine", "percent": 1, "ml": 5}],
    }
    data.update(change)
    return data


def problem_fields(exc: pytest.ExceptionInfo[InvalidInput]) -> dict[str, str]:
    return {p.field: p.reason for p in exc.value.problems}


# --------------------------------------------------------------------------- §3 numbers
HOSTILE = [
    Decimal("1e-999999999"),
    Decimal("1e999999999"),
    Decimal("0E-999999999"),
    Decimal("-1e-999999999"),
    "1e-999999999",
    "9" * 5000,
    10**60,
    1e308,
    True,
    "NaN",
    "Infinity",
    "1_000",
    " 5 ",
]


@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v)[:24])
@pytest.mark.parametrize("where", ["ml", "percent", "weight_kg", "height_cm", "prior_mg"])
def test_hostile_numbers_are_refused_naming_the_field(
    kb: Knowledge, value: Any, where: str
) -> None:
    data = dose_data()
    path = {
        "ml": "solutions[0].ml",
        "percent": "solutions[0].percent",
        "weight_kg": "weight_kg",
        "height_cm": "height_cm",
        "prior_mg": "prior_24h[0].mg",
    }[where]
    if where in ("ml", "percent"):
        data["solutions"][0][where] = value
    elif where == "prior_mg":
        data["prior_24h"] = [{"agent": "lidocaine", "mg": value}]
    else:
        data[where] = value
    with pytest.raises(InvalidInput) as exc:
        check_dose(parse_dose_request(data), kb)
    assert path in problem_fields(exc)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"ml": Decimal("0.001")}, "solutions[0].ml", "rounds to 0"),
        ({"ml": Decimal("0.0000001")}, "solutions[0].ml", "rounds to 0"),
        ({"percent": Decimal("0.001")}, "solutions[0].percent", "rounds to 0"),
    ],
)
def test_values_that_round_to_zero_are_refused(
    kb: Knowledge, change: dict[str, Any], field: str, words: str
) -> None:
    data = dose_data()
    data["solutions"][0].update(change)
    with pytest.raises(InvalidInput) as exc:
        check_dose(parse_dose_request(data), kb, policy=Policy(allow_non_marketed_strength=True))
    assert words in problem_fields(exc)[field]


def test_the_planner_is_bounded_too(kb: Knowledge) -> None:
    data = {
        "assessment": example("ql_chronic_low_back"),
        "targets": [
            {"muscle": "quadratus_lumborum", "side": "right", "volume_ml_per_site": "1e-9"}
        ],
        "injectate": {"solutions": [{"agent": "lidocaine", "percent": 0.5, "parts": 1e-300}]},
    }
    with pytest.raises(InvalidInput) as exc:
        parse_plan_request(data, kb)
    found = problem_fields(exc)
    assert {"targets[0].volume_ml_per_site", "injectate.solutions[0].parts"} <= set(found)


def test_a_tiny_share_of_the_mixture_is_named_by_its_parts(kb: Knowledge) -> None:
    data = {
        "assessment": example("ql_chronic_low_back"),
        "targets": [{"muscle": "quadratus_lumborum", "side": "right"}],
        "injectate": {
            "solutions": [{"agent": "lidocaine", "percent": 0.5, "parts": 0.001}],
            "saline_parts": 100,
        },
    }
    req = parse_plan_request(data, kb)
    with pytest.raises(InvalidInput) as exc:
        plan_from_request(req, kb, as_of=AS_OF)
    assert "injectate.solutions[0].parts" in problem_fields(exc)


# --------------------------------------------------------------------------- §4 strict types
@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("patient", "age_years"), "52", "patient.age_years"),
        (("patient", "age_years"), 52.5, "patient.age_years"),
        (("patient", "age_years"), True, "patient.age_years"),
        (("patient", "weight_kg"), "eighty", "patient.weight_kg"),
        (("patient", "weight_kg"), False, "patient.weight_kg"),
        (("pain", "nrs"), "6", "pain.nrs"),
        (("pain", "duration_weeks"), "20", "pain.duration_weeks"),
        (("pain", "constant"), 1, "pain.constant"),
        (("pain", "constant"), "true", "pain.constant"),
        (("red_flags", "cauda_equina"), 0, "red_flags.cauda_equina"),
    ],
)
def test_strict_types_in_the_assessment(
    kb: Knowledge, path: tuple[str, str], value: Any, field: str
) -> None:
    data = example("ql_chronic_low_back")
    data[path[0]][path[1]] = value
    with pytest.raises(InvalidInput) as exc:
        parse_assessment(data, kb)
    assert field in problem_fields(exc)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"medications": [{"name": "x"}] * 2001}, "medications"),
        ({"conservative_care": [{"modality": "heat"}] * 41}, "conservative_care"),
        ({"medications": [{"name": "x" * 201}]}, "medications[0].name"),
        ({"medications": [{"name": "x", "rxnorm": "12a"}]}, "medications[0].rxnorm"),
        ({"medications": [{"name": "x", "active": 1}]}, "medications[0].active"),
    ],
)
def test_list_and_string_limits_in_the_assessment(
    kb: Knowledge, change: dict[str, Any], field: str
) -> None:
    data = example("ql_chronic_low_back")
    data.update(change)
    with pytest.raises(InvalidInput) as exc:
        parse_assessment(data, kb)
    assert field in problem_fields(exc)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"a": ' + "9" * 5000 + "}", "digits"),
        ("[" * 100_000 + "]" * 100_000, "nested"),
        ("[" * 40 + "]" * 40, "nested"),
        ('{"a": NaN}', "not a JSON number"),
        ('{"a": 1e999}', "too large"),
        ('{"a": ', "not valid JSON"),
    ],
)
def test_bounded_json_reader(text: str, words: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        loads(text, "FILE")
    assert exc.value.problems[0].field == "FILE"
    assert words in exc.value.problems[0].reason


# --------------------------------------------------------------------------- §4 the CLI
def _cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--injectate", "lidocaine:1:1e-999999999"], "--injectate #1"),
        (["--injectate", "lidocaine:1e999999999:1"], "--injectate #1"),
        (["--injectate", "lidocaine:1:0.001"], "rounds to 0"),
        (["--injectate", "lidocaine:1:1"] * 21, "--injectate: at most 20"),
        (["--injectate", "lidocaine:1:1", *(["--prior-24h", "lidocaine:1"] * 51)], "--prior-24h"),
        (["--injectate", "a" * 100 + ":1:1"], "at most 60 characters"),
        (["--injectate", "lidocaine:" + "9" * 5000 + ":1"], "not a number"),
    ],
)
def test_cli_dose_refuses_with_exit_2(args: list[str], words: str) -> None:
    res = _cli("dose", "--weight-kg", "70", *args)
    assert res.exit_code == 2, res.output
    assert words in res.stderr
    assert "Traceback" not in res.output + res.stderr


@pytest.mark.parametrize(
    "text",
    [
        '{"patient": {"age_years": ' + "9" * 5000 + "}}",
        "[" * 50_000 + "]" * 50_000,
        '{"patient": {"age_years": "52", "sex": "male"}, "regions": ["low_back"]}',
        '{"patient": {"age_years": 52, "sex": "male", "pregnant": 0}, "regions": ["low_back"]}',
    ],
)
@pytest.mark.parametrize("command", ["assess", "plan"])
def test_cli_files_refuse_with_exit_2(tmp_path: Path, text: str, command: str) -> None:
    f = tmp_path / "in.json"
    f.write_text(text)
    res = _cli(command, str(f))
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output + res.stderr


# --------------------------------------------------------------------------- §5 the ledger
def test_earlier_doses_of_another_agent_add_up(kb: Knowledge) -> None:
    """The additive rule (FDA mepivacaine label; Rosenberg et al. RAPM 2004;29:564-75)
    covers the ledger: earlier lidocaine + bupivacaine now against one allowance."""
    now = dose_data(solutions=[{"agent": "bupivacaine", "percent": 0.25, "ml": 20}])
    alone = check_dose(parse_dose_request(now), kb)
    with_prior = check_dose(
        parse_dose_request({**now, "prior_24h": [{"agent": "lidocaine", "mg": 250}]}), kb
    )
    assert alone.level == "ok"
    assert with_prior.level == "exceeds"
    daily = {d.agent: d for d in with_prior.daily}
    assert set(daily) == {"bupivacaine", "lidocaine"}
    assert with_prior.mixture.fraction_24h >= daily["lidocaine"].fraction + daily[
        "bupivacaine"
    ].fraction - Decimal("0.0002")
    assert "mixture" in {r.code for r in with_prior.reasons}


@pytest.mark.parametrize(
    ("hours", "window", "counts"),
    [(None, 6, True), (3, 6, True), (6, 6, False), (20, 24, True), (24, 24, False)],
)
def test_earlier_doses_count_unless_timed_out_by_policy(
    kb: Knowledge, hours: int | None, window: int, counts: bool
) -> None:
    prior: dict[str, Any] = {"agent": "lidocaine", "mg": 250}
    if hours is not None:
        prior["hours_ago"] = hours
    data = dose_data(
        solutions=[{"agent": "bupivacaine", "percent": 0.25, "ml": 20}], prior_24h=[prior]
    )
    result = check_dose(
        parse_dose_request(data), kb, policy=Policy(prior_dose_window_hours=Decimal(window))
    )
    assert (result.level == "exceeds") is counts
    assert ("prior_not_counted" in {r.code for r in result.reasons}) is not counts


def test_hours_ago_beyond_the_ledger_is_refused(kb: Knowledge) -> None:
    data = dose_data(prior_24h=[{"agent": "lidocaine", "mg": 10, "hours_ago": 30}])
    with pytest.raises(InvalidInput) as exc:
        parse_dose_request(data)
    assert "prior_24h[0].hours_ago" in problem_fields(exc)


def test_json_schema_of_the_dose_request_is_valid_json() -> None:
    from triggerpath.domain.dosing import DoseRequest

    schema = DoseRequest.model_json_schema()
    assert json.loads(json.dumps(schema))["properties"]["weight_kg"]


@pytest.mark.parametrize("raw", ["1e999999999", "1e-999999999", "9" * 5000])
def test_web_form_numbers_use_the_same_bound(raw: str) -> None:
    """The web form's number reader refuses what the engine refuses (it never hangs)."""
    from triggerpath.entrypoints.web.forms import Parsed, _number

    parsed = Parsed()
    assert _number(parsed, {"patient.age_years": raw}, "patient.age_years", whole=True) is None
    assert [p.field for p in parsed.problems] == ["patient.age_years"]
