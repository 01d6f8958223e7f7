"""One plan shape, one planner (issue 11 §1): every file in examples/plans gives the same
answer through ``triggerpath plan FILE`` and through ``POST /api/v1/assessments/{id}/plans``
(the file's assessment recorded first, the rest of the file posted). Ready plans are stored
with exactly the CLI's result; every other status is a 422 carrying the planner's issues.
(The web planner is the third leg, tested with the web app.)
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from triggerpath.entrypoints.cli import app

from .conftest import Service

PLANS = Path(__file__).resolve().parents[2] / "examples" / "plans"
FILES = sorted(p for p in PLANS.glob("*.json") if p.name != "expected.json")
runner = CliRunner()


def _cli(path: Path, as_of: date) -> dict[str, Any]:
    res = runner.invoke(app, ["plan", str(path), "--format", "json", "--as-of", as_of.isoformat()])
    assert res.exit_code == 0, res.output
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def test_every_example_is_covered() -> None:
    expected = json.loads((PLANS / "expected.json").read_text(encoding="utf-8"))
    assert {p.stem for p in FILES} == set(expected)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_cli_and_api_give_the_same_answer(service: Service, path: Path) -> None:
    today = service.app.state.tp.today()
    cli = _cli(path, today)
    data = json.loads(path.read_text(encoding="utf-8"))
    assessment = data.pop("assessment")
    episode = service.episode(service.patient()["id"])
    a = service.ok(
        service.post(f"/api/v1/episodes/{episode['id']}/assessments", json={"input": assessment})
    )
    r = service.post(f"/api/v1/assessments/{a['id']}/plans", json=data)
    if cli["status"] == "ready":
        stored = service.ok(r)
        assert stored["data"]["result"] == cli
        return
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert {e["rule"] for e in errors} == {"plan.not_ready"}
    assert all(e["reason"].startswith(f"{cli['status']}: ") for e in errors)
    texts = {e["reason"].split(": ", 1)[1] for e in errors}
    issues = {i["text"] for i in cli["issues"]} or {x["text"] for x in cli["reasons"]}
    assert texts == issues
    listed = service.get(f"/api/v1/assessments/{a['id']}/plans").json()
    assert listed["total"] == 0
