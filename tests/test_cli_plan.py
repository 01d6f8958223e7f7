"""``triggerpath dose`` and ``triggerpath plan``: levels, exit codes, messages naming the flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from triggerpath.entrypoints.cli import app

from .conftest import ROOT

runner = CliRunner()


def flat(text: str) -> str:
    """Output with Rich's line wrapping undone (long paths wrap at 80 columns)."""
    return " ".join(text.split())


PLANS = ROOT / "examples" / "plans"
ISSUE_EXAMPLE = [
    "dose",
    "--weight-kg",
    "70",
    "--injectate",
    "lidocaine:1:20",
    "--injectate",
    "bupivacaine:0.25:10:epi",
    "--prior-24h",
    "bupivacaine:100",
]


def test_dose_json_has_level_first_and_per_agent_figures() -> None:
    res = runner.invoke(app, [*ISSUE_EXAMPLE, "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert next(iter(data)) == "level"
    # conservative default: lidocaine 1% x 20 mL = 200 mg is the whole BNF 200 mg allowance,
    # so the mixture with bupivacaine and the 24-hour ledger exceed it
    assert data["level"] == "exceeds"
    agents = {(a["agent"], a["epinephrine"]): a for a in data["agents"]}
    assert agents[("lidocaine", False)]["mg"] == 200
    assert agents[("bupivacaine", True)]["mg"] == 25
    bupi_day = next(d for d in data["daily"] if d["agent"] == "bupivacaine")
    assert (bupi_day["prior_mg"], bupi_day["total_mg"], bupi_day["max_mg"]) == (100, 125, 400)
    assert data["mixture"]["convention"] == "additive_fraction"
    assert all(s["remaining_ml"] == 0 for s in data["solutions"])


def test_dose_exit_code_is_0_whatever_the_level() -> None:
    ok = runner.invoke(app, ["dose", "--weight-kg", "80", "--injectate", "lidocaine:0.5:4"])
    assert ok.exit_code == 0 and " OK " in ok.stdout.splitlines()[1]
    over = runner.invoke(app, ["dose", "--weight-kg", "80", "--injectate", "lidocaine:2:30"])
    assert over.exit_code == 0 and "EXCEEDS" in over.stdout.splitlines()[1]
    assert "S000.28" in over.stdout and "S000.29" in over.stdout


def test_dose_with_a_label_policy_file(tmp_path: Path) -> None:
    """Xylocaine 300 mg / Marcaine 225 mg with epinephrine: the same doses are only 'caution'."""
    policy = tmp_path / "clinic.json"
    policy.write_text(json.dumps({"dose_limit_source": "fda_label", "dose_weight_basis": "actual"}))
    res = runner.invoke(
        app, [*ISSUE_EXAMPLE[:1], "--policy", str(policy), *ISSUE_EXAMPLE[1:], "--format", "json"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["level"] == "caution" and data["limit_source"] == "fda_label"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"dose_limit_source": "rumour", "dose_caution_fraction": 2}))
    res = runner.invoke(app, [*ISSUE_EXAMPLE, "--policy", str(bad)])
    assert res.exit_code == 2
    assert "dose_limit_source" in flat(res.stderr)
    assert "dose_caution_fraction" in flat(res.stderr)


def test_height_and_sex_give_the_lean_weight() -> None:
    res = runner.invoke(
        app,
        [
            "dose",
            "--weight-kg",
            "84",
            "--height-cm",
            "178",
            "--sex",
            "male",
            "--injectate",
            "lidocaine:1:10",
            "--format",
            "json",
        ],
    )
    assert res.exit_code == 0, res.output
    weight = json.loads(res.stdout)["weight"]
    assert (weight["basis"], weight["kg"]) == ("lean", 62.7)  # Janmahasatian 2005


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (["--weight-kg", "0", "--injectate", "lidocaine:1:10"], "--weight-kg"),
        (["--weight-kg", "abc", "--injectate", "lidocaine:1:10"], "--weight-kg"),
        (["--weight-kg", "900", "--injectate", "lidocaine:1:10"], "--weight-kg"),
        (["--weight-kg", "70", "--injectate", "lidocaine:1"], "--injectate #1 (lidocaine:1)"),
        (["--weight-kg", "70", "--injectate", "lidocaine:x:10"], "--injectate #1"),
        (["--weight-kg", "70", "--injectate", "lidocaine:1:10:adr"], "--injectate #1"),
        (
            ["--weight-kg", "70", "--injectate", "lidocaine:0:10"],
            "--injectate #1 (lidocaine:0:10) percent",
        ),
        (["--weight-kg", "70", "--injectate", "lidocaine:120:10"], "percent"),
        (
            ["--weight-kg", "70", "--injectate", "lidocaine:1:0"],
            "--injectate #1 (lidocaine:1:0) ml",
        ),
        (["--weight-kg", "70", "--injectate", "procaine:1:10"], "agent"),
        (
            [
                "--weight-kg",
                "70",
                "--injectate",
                "lidocaine:1:5",
                "--injectate",
                "bupivacaine:0.3:5",
            ],
            "--injectate #2 (bupivacaine:0.3:5) percent",
        ),
        (["--weight-kg", "70", "--injectate", "ropivacaine:0.5:5:epi"], "epinephrine"),
        (
            ["--weight-kg", "70", "--injectate", "lidocaine:1:5", "--prior-24h", "bupivacaine"],
            "--prior-24h #1",
        ),
        (
            ["--weight-kg", "70", "--injectate", "lidocaine:1:5", "--prior-24h", "bupivacaine:-4"],
            "--prior-24h #1 (bupivacaine:-4) mg",
        ),
        (["--weight-kg", "70", "--injectate", "lidocaine:1:5", "--sex", "alien"], "--sex"),
        (["--weight-kg", "70", "--injectate", "lidocaine:1:5", "--height-cm", "20"], "--height-cm"),
        (["--weight-kg", "70"], "--injectate"),
    ],
)
def test_dose_bad_input_exits_2_naming_the_flag(args: list[str], where: str) -> None:
    res = runner.invoke(app, ["dose", *args])
    assert res.exit_code == 2, res.output
    assert where in flat(res.stderr) or where in flat(res.output)
    assert "Traceback" not in res.output + res.stderr


def test_non_marketed_strength_needs_the_explicit_flag() -> None:
    args = ["dose", "--weight-kg", "70", "--injectate", "bupivacaine:0.3:10", "--format", "json"]
    assert runner.invoke(app, args).exit_code == 2
    res = runner.invoke(app, [*args, "--allow-non-marketed"])
    assert res.exit_code == 0 and json.loads(res.stdout)["agents"][0]["mg"] == 30


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("ql_low_back_ok", "READY"),
        ("blocked_bupivacaine_24h_ledger", "BLOCKED"),
        ("refused_sciatica_not_indicated", "REFUSED"),
        ("levator_on_apixaban_needs_acknowledgement", "NEEDS_ACKNOWLEDGEMENT"),
    ],
)
def test_plan_text_leads_with_the_status(name: str, status: str) -> None:
    res = runner.invoke(app, ["plan", str(PLANS / f"{name}.json"), "--as-of", "2026-11-21"])
    assert res.exit_code == 0, res.output
    assert status in res.stdout.splitlines()[1]


def test_plan_json_records_status_dose_and_acknowledgements() -> None:
    res = runner.invoke(
        app,
        [
            "plan",
            str(PLANS / "ql_on_warfarin_acknowledged.json"),
            "--format",
            "json",
            "--as-of",
            "2026-11-21",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert next(iter(data)) == "status" and data["status"] == "ready"
    assert data["acknowledgements"]["acknowledged"] == ["anticoagulant"]
    assert data["dose"]["level"] == "ok"
    assert data["reassessment"] == {
        "earliest": "2026-12-05",
        "latest": "2026-12-19",
        "text": data["reassessment"]["text"],
        "statement_ids": ["S003.12"],
    }


def test_plan_bad_input_exits_2(tmp_path: Path) -> None:
    data = json.loads((PLANS / "ql_low_back_ok.json").read_text())
    data["targets"][0]["muscle"] = "biceps"
    data["injectate"]["solutions"][0]["percent"] = 0
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(data))
    res = runner.invoke(app, ["plan", str(f)])
    assert res.exit_code == 2
    assert "targets[0].muscle" in flat(res.stderr)
    assert "injectate.solutions[0].percent" in flat(res.stderr)
    res = runner.invoke(app, ["plan", str(tmp_path / "missing.json")])
    assert res.exit_code == 2 and "does not exist" in flat(res.stderr)


def test_schema_plan_and_knowledge_injectates() -> None:
    res = runner.invoke(app, ["schema", "plan"])
    assert res.exit_code == 0
    schema = json.loads(res.stdout)
    assert "lidocaine" in schema["$defs"]["InjectateSolution"]["properties"]["agent"]["enum"]
    res = runner.invoke(app, ["knowledge", "injectates"])
    assert res.exit_code == 0
    assert "fda_label" in res.stdout and "uk_bnf" in res.stdout and "Additive" in res.stdout
    res = runner.invoke(app, ["knowledge", "injectates", "--format", "json"])
    data = json.loads(res.stdout)
    assert {a["id"] for a in data["local_anesthetics"]} == {
        "lidocaine",
        "bupivacaine",
        "ropivacaine",
        "mepivacaine",
    }
