"""``triggerpath score`` and ``triggerpath course``: JSON keys, exit codes, field-named errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from triggerpath.entrypoints.cli import app

from .conftest import ROOT

runner = CliRunner()
COURSES = ROOT / "examples" / "courses"


def stderr(res: Result) -> str:
    """stderr with Rich's line wrapping undone (long paths wrap at the console width)."""
    return " ".join(res.stderr.split())


def test_score_odi_json_fairbank_example() -> None:
    """Fairbank & Pynsent 2000: 16/50 -> 32%, moderate disability."""
    res = runner.invoke(app, ["score", "odi", "--answers", "2,2,2,2,2,2,2,1,1,0", "-f", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert list(data)[:3] == ["instrument", "score", "band"]
    assert (data["score"], data["band"], data["raw"]) == (32.0, "moderate", 16)
    assert data["subscales"] == {}


def test_score_empty_field_is_a_missing_item() -> None:
    """Fairbank & Pynsent 2000: one section missed -> 16/45 = 35.5%."""
    res = runner.invoke(app, ["score", "odi", "--answers", "2,2,,2,2,2,2,2,1,1", "-f", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["missing_items"] == [3]
    assert data["score"] == 35.56


def test_score_startback_has_the_psychosocial_subscale() -> None:
    """Hill 2008: psychosocial subscale (items 5-9) >= 4 -> high risk; item 9 '3' = very much."""
    res = runner.invoke(app, ["score", "startback", "-a", "1,0,1,0,1,1,1,0,3", "-f", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert (data["score"], data["band"]) == (6.0, "high")
    assert data["subscales"] == {"psychosocial": 4}
    assert data["matched_care"]


def test_score_text_for_people() -> None:
    res = runner.invoke(app, ["score", "ndi", "-a", "1,1,1,1,1,1,1,1,1,1"])
    assert res.exit_code == 0, res.output
    assert "20%" in res.stdout and "mild" in res.stdout and "Vernon" in res.stdout


def test_score_bad_answers_exit_2_naming_the_answer() -> None:
    res = runner.invoke(app, ["score", "odi", "--answers", "2,2,2,7,2,2,2,1,1,0"])
    assert res.exit_code == 2
    assert "answers[3]: 7 is out of range 0-5" in stderr(res)
    assert "Traceback" not in res.output + res.stderr
    res = runner.invoke(app, ["score", "peg", "--answers", "4,x,5"])
    assert res.exit_code == 2 and "answers[1]: 'x' is not a whole number" in stderr(res)
    res = runner.invoke(app, ["score", "peg", "--answers", "4,5"])
    assert res.exit_code == 2 and "peg has 3 items, got 2 answers" in stderr(res)
    res = runner.invoke(app, ["score", "odi", "--answers", "2,2,,,2,2,2,1,1,0"])
    assert res.exit_code == 2 and "2 items missing" in stderr(res)
    res = runner.invoke(app, ["score", "sf36", "--answers", "1"])
    assert res.exit_code == 2 and "INSTRUMENT: unknown instrument 'sf36'" in stderr(res)


def test_course_json_for_the_failing_example() -> None:
    res = runner.invoke(
        app,
        [
            "course",
            str(COURSES / "failing_low_back.json"),
            "--format",
            "json",
            "--as-of",
            "2026-11-21",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert next(iter(data)) == "headline"
    assert data["response"]["classification"] == "non_responder"
    assert data["reevaluation"]["technical_review"]
    assert data["ablation"]["decision"] == "supported"
    assert data["as_of"] == "2026-11-21"
    assert all(w["statement_ids"] for w in data["warnings"])


def test_course_text_leads_with_the_response() -> None:
    res = runner.invoke(
        app, ["course", str(COURSES / "subacute_neck_at_limit.json"), "--as-of", "2026-11-21"]
    )
    assert res.exit_code == 0, res.output
    first_lines = res.stdout.strip().splitlines()[:3]
    assert any("RESPONDER" in line for line in first_lines)
    assert "Session limit" in res.stdout or "upper end" in res.stdout
    assert "S000.20" in res.stdout


def test_course_bad_file_exits_2(tmp_path: Path) -> None:
    data = json.loads((COURSES / "responding_low_back.json").read_text())
    data["sessions"][0]["pre_nrs"] = 12
    data["sessions"][1]["odi"][0] = 9
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(data))
    res = runner.invoke(app, ["course", str(f), "--as-of", "2026-11-21"])
    assert res.exit_code == 2
    assert "sessions[0].pre_nrs" in stderr(res)
    assert "Traceback" not in res.output + res.stderr
    data["sessions"][0]["pre_nrs"] = 7
    f.write_text(json.dumps(data))
    res = runner.invoke(app, ["course", str(f), "--as-of", "2026-11-21"])
    assert res.exit_code == 2
    assert "sessions[1].odi[0]: 9 is out of range 0-5" in stderr(res)
    res = runner.invoke(app, ["course", str(tmp_path / "none.json")])
    assert res.exit_code == 2 and "does not exist" in stderr(res)


def test_schema_episode_validates_the_shipped_examples() -> None:
    import jsonschema

    res = runner.invoke(app, ["schema", "episode"])
    assert res.exit_code == 0, res.output
    schema = json.loads(res.stdout)
    assert {"assessment", "sessions", "medial_branch_blocks"} <= set(schema["properties"])
    for path in COURSES.glob("*.json"):
        if path.name != "expected.json":
            jsonschema.validate(json.loads(path.read_text()), schema)
    bad = json.loads((COURSES / "responding_low_back.json").read_text())
    bad["sessions"][0]["surprise"] = 1
    try:
        jsonschema.validate(bad, schema)
    except jsonschema.ValidationError:
        pass
    else:  # pragma: no cover - the schema forbids unknown fields
        raise AssertionError("unknown session field accepted")
