"""Issue 12 §3-§4 through the API: hostile bodies are 422 problem details naming the
field (never a 500, a 400 without a field, or a hang), the same rules as the CLI."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from ..conftest import example
from .conftest import Service


def _plan() -> dict[str, Any]:
    return {
        "assessment": example("ql_chronic_low_back"),
        "targets": [{"muscle": "quadratus_lumborum", "side": "right", "sites": 2}],
        "injectate": {"solutions": [{"agent": "lidocaine", "percent": 0.5}]},
    }


DOSE: dict[str, Any] = {
    "weight_kg": 80,
    "solutions": [{"agent": "lidocaine", "percent": 1, "ml": 5}],
}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {**DOSE, "solutions": [{"agent": "lidocaine", "percent": 1, "ml": "1e-999999999"}]},
            "solutions[0].ml",
        ),
        (
            {**DOSE, "solutions": [{"agent": "lidocaine", "percent": "1", "ml": 1e-300}]},
            "solutions[0].ml",
        ),
        ({**DOSE, "weight_kg": True}, "weight_kg"),
        ({**DOSE, "solutions": [DOSE["solutions"][0]] * 21}, "solutions"),
        ({**DOSE, "solutions": [{"agent": "a" * 61, "percent": 1, "ml": 1}]}, "solutions[0].agent"),
    ],
)
def test_dose_bodies_are_422_naming_the_field(
    service: Service, body: dict[str, Any], field: str
) -> None:
    r = service.post("/api/v1/dose", json=body)
    assert r.status_code == 422, r.text
    assert field in {e["field"] for e in r.json()["errors"]}


def test_assess_strict_types_are_422(service: Service) -> None:
    body = example("ql_chronic_low_back")
    body["pain"]["constant"] = 1
    body["patient"]["age_years"] = "52"
    r = service.post("/api/v1/assess", json=body)
    assert r.status_code == 422, r.text
    assert {"pain.constant", "patient.age_years"} <= {e["field"] for e in r.json()["errors"]}


def test_plan_with_an_unrecognised_medicine_needs_acknowledgement(service: Service) -> None:
    body = _plan()
    body["assessment"]["medications"] = [{"name": "Eliquis® 5 mg"}]
    r = service.post("/api/v1/plan", json=body, params={"as_of": "2026-11-21"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "needs_acknowledgement"
    other = copy.deepcopy(_plan())
    other["assessment"]["medications"] = [{"name": "Zyntrix 10 mg"}]
    r2 = service.post("/api/v1/plan", json=other, params={"as_of": "2026-11-21"})
    assert r2.json()["status"] == "needs_acknowledgement"
    assert "medication_unrecognised" in r2.json()["acknowledgements"]["missing"]


@pytest.mark.parametrize(
    "raw",
    [
        '{"weight_kg": ' + "9" * 5000 + ', "solutions": []}',
        "[" * 5000 + "]" * 5000,
    ],
)
def test_hostile_json_text_is_a_client_error(service: Service, raw: str) -> None:
    r = service.post(
        "/api/v1/dose", content=raw.encode(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert json.loads(r.text)["errors"][0]["field"] == "(body)"


def test_malformed_json_keeps_the_house_rule(service: Service) -> None:
    r = service.post(
        "/api/v1/dose", content=b'{"weight_kg": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
