"""CDS Hooks mounted in the clinic service: discovery, a hook call and durable feedback.

Runs on SQLite and on the real PostgreSQL (the ``backend`` fixture), in development mode
(unauthenticated calls allowed, as the CDS Hooks issue specifies for local testing).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi.testclient import TestClient

from triggerpath.adapters.cds_feedback import SqlFeedbackStore
from triggerpath.config import Settings
from triggerpath.entrypoints.api.app import create_app

from ..cds_helpers import bundle, condition, hook_request, med_request, patient, tpi_service_request
from .conftest import Backend


def _client(backend: Backend, tmp_path: Path) -> TestClient:
    cfg = Settings(
        env="development",
        data_dir=tmp_path,
        database_url=backend.url,
        secret_key=secrets.token_urlsafe(40),
        jwt_signing_key=secrets.token_urlsafe(40),
    )
    return TestClient(create_app(cfg, engine=backend.engine), raise_server_exceptions=False)


def test_discovery_lists_the_three_services(backend: Backend, tmp_path: Path) -> None:
    with _client(backend, tmp_path) as client:
        r = client.get("/cds-services")
    assert r.status_code == 200
    ids = {s["id"] for s in r.json()["services"]}
    assert {"patient-view", "order-select", "order-sign"} <= ids


def test_cards_and_feedback_survive_in_the_database(backend: Backend, tmp_path: Path) -> None:
    prefetch = {
        "patient": patient("p1"),
        "conditions": bundle(condition("M54.50", rid="lbp"), kind="searchset"),
        "medicationRequests": bundle(
            med_request("855332", "Warfarin Sodium 5 MG Oral Tablet"), kind="searchset"
        ),
        "allergies": None,
    }
    body = hook_request(
        "order-sign", "p1", prefetch, draft_orders=bundle(tpi_service_request(pid="p1"))
    )
    with _client(backend, tmp_path) as client:
        r = client.post("/cds-services/order-sign", json=body)
        assert r.status_code == 200, r.text
        cards = {c["source"]["topic"]["code"]: c for c in r.json()["cards"]}
        # an active warfarin order gives the anticoagulant caution (S002.30, S002.32)
        card = cards["caution-anticoagulant"]
        fb = {
            "feedback": [
                {
                    "card": card["uuid"],
                    "outcome": "overridden",
                    "overrideReason": {"userComment": "INR 2.1 today; firm pressure planned."},
                    "outcomeTimestamp": "2026-11-21T12:00:00Z",
                }
            ]
        }
        r = client.post("/cds-services/order-sign/feedback", json=fb)
        assert r.status_code == 200, r.text
    store = SqlFeedbackStore(backend.engine)  # a fresh store: read back from the database
    issued = store.card(card["uuid"])
    assert issued is not None and issued.code == "caution-anticoagulant"
    assert issued.trace  # the evaluation trace is kept with the card
    got = store.feedback(card["uuid"])
    assert [(f.outcome, f.card_known) for f in got] == [("overridden", True)]
    assert got[0].user_comment == "INR 2.1 today; firm pressure planned."
