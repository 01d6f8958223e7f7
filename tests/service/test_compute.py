"""The engine endpoints on posted data (dose, plan, course, score): each is a faithful
translation of the domain function (same JSON as calling it directly), audited, and
input errors come back as problem details naming the field."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from triggerpath.domain.course import evaluate_course, parse_episode
from triggerpath.domain.dosing import check_dose, parse_dose_request
from triggerpath.domain.planning import parse_plan_request, plan_from_request
from triggerpath.knowledge import Knowledge

from ..conftest import ROOT
from .conftest import Service

AS_OF = "2026-11-21"
PLANS = ROOT / "examples" / "plans"
COURSES = ROOT / "examples" / "courses"


def _examples(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.json") if p.stem != "expected")


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", _examples(PLANS))
def test_plan_endpoint_matches_the_planner(service: Service, kb: Knowledge, name: str) -> None:
    data = _load(PLANS / f"{name}.json")
    r = service.post("/api/v1/plan", json=data, params={"as_of": AS_OF})
    assert r.status_code == 200, r.text
    direct = plan_from_request(parse_plan_request(data, kb), kb, as_of=date(2026, 11, 21))
    assert r.json() == direct.model_dump(mode="json")
    expected = _load(PLANS / "expected.json").get(name)
    if expected:
        assert r.json()["status"] == expected["status"]


@pytest.mark.parametrize("name", _examples(COURSES))
def test_course_endpoint_matches_the_course_rules(
    service: Service, kb: Knowledge, name: str
) -> None:
    data = _load(COURSES / f"{name}.json")
    r = service.post("/api/v1/course", role="nurse", json=data, params={"as_of": AS_OF})
    assert r.status_code == 200, r.text
    when = date(2026, 11, 21)
    direct = evaluate_course(parse_episode(data, kb, as_of=when), kb, as_of=when)
    assert r.json() == direct.model_dump(mode="json")
    expected = _load(COURSES / "expected.json").get(name)
    if expected:
        assert r.json()["response"]["classification"] == expected["response"]


def test_dose_endpoint(service: Service, kb: Knowledge) -> None:
    body = {
        "weight_kg": 70,
        "solutions": [{"agent": "lidocaine", "percent": 1, "ml": 10}],
    }
    r = service.post("/api/v1/dose", json=body)
    assert r.status_code == 200, r.text
    direct = check_dose(parse_dose_request(body), kb)
    assert r.json() == direct.model_dump(mode="json")


def test_score_endpoint_odi(service: Service) -> None:
    """ODI 2.1a: total / (5 x sections answered) x 100 (Fairbank & Pynsent, Spine 2000).

    Nine sections answered, total 16: 16 / 45 x 100 = 35.6 %.
    """
    answers = [2, 2, None, 2, 2, 2, 2, 2, 1, 1]
    r = service.post("/api/v1/score/odi", role="nurse", json={"answers": answers})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["raw"] == 16 and got["answered"] == 9 and got["missing_items"] == [3]
    assert got["score"] == pytest.approx(16 / 45 * 100, abs=0.1)


def test_compute_errors_name_the_field(service: Service) -> None:
    r = service.post("/api/v1/score/odi", json={"answers": [9] * 10})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} >= {"answers[0]"}
    r = service.post("/api/v1/score/vas", json={"answers": [1]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "path.instrument"
    mark = service.watermark()
    r = service.post("/api/v1/score/nrs", role="admin", json={"answers": [3]})
    assert r.status_code == 403
    (event,) = service.events_after(mark)
    assert (event.action, event.outcome, event.patient_id) == ("compute.score", "denied", None)
