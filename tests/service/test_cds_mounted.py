"""CDS Hooks mounted in the clinic service: discovery, a hook call and durable feedback.

Runs on SQLite and on the real PostgreSQL (the ``backend`` fixture), in development mode
(unauthenticated calls allowed, as the CDS Hooks issue specifies for local testing).
"""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient

from triggerpath.adapters.cds_feedback import SqlFeedbackStore
from triggerpath.config import Settings
from triggerpath.entrypoints.api.app import create_app

from ..cds_helpers import (
    EhrKeys,
    bundle,
    condition,
    hook_request,
    med_request,
    patient,
    tpi_service_request,
)
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


# --------------------------------------------------------------------------- production
def _signed_app(backend: Backend, tmp_path: Path, keys: EhrKeys) -> TestClient:
    """A strict (non-development) app trusting ``keys`` (inline JWKS), on the shared backend."""
    cfg = Settings(
        env="staging",  # strict like production, without its database-role start checks
        data_dir=tmp_path,
        database_url=backend.url,
        secret_key=secrets.token_urlsafe(40),
        jwt_signing_key=secrets.token_urlsafe(40),
        cds_trusted_clients=json.dumps({keys.issuer: {"jwks": keys.jwks()}}),
        cds_fhir_server_allowlist="https://ehr.example.org/fhir/",
    )
    return TestClient(create_app(cfg, engine=backend.engine), raise_server_exceptions=False)


def _auth(keys: EhrKeys, path: str, jti: str | None = None) -> dict[str, str]:
    token = keys.token(f"http://testserver{path}", now=datetime.now(UTC), jti=jti)
    return {"Authorization": f"Bearer {token}"}


def _lbp_call(hook_instance: str | None = None) -> dict[str, Any]:
    prefetch = {
        "patient": patient("p1"),
        "conditions": bundle(condition("M54.50", rid="lbp"), kind="searchset"),
        "medicationRequests": None,
        "allergies": None,
    }
    body = hook_request("patient-view", "p1", prefetch)
    if hook_instance:
        body["hookInstance"] = hook_instance
    return body


def test_a_jti_used_at_one_worker_is_refused_by_another(backend: Backend, tmp_path: Path) -> None:
    """Two apps on one database stand for two workers: the replay store is shared."""
    keys = EhrKeys()
    path = "/cds-services/patient-view"
    headers = _auth(keys, path)
    with _signed_app(backend, tmp_path, keys) as one, _signed_app(backend, tmp_path, keys) as two:
        assert one.post(path, json=_lbp_call()).status_code == 401  # unsigned
        assert one.post(path, json=_lbp_call(), headers=headers).status_code == 200
        again = two.post(path, json=_lbp_call(), headers=headers)
    assert again.status_code == 401 and "replay" in again.json()["detail"]


def test_the_same_hook_instance_twice_answers_the_same_cards(
    backend: Backend, tmp_path: Path
) -> None:
    """Never a unique-key 500: the stored answer is given again, by any worker."""
    keys = EhrKeys()
    path = "/cds-services/patient-view"
    body = _lbp_call(str(uuid.uuid4()))
    with _signed_app(backend, tmp_path, keys) as one:
        first = one.post(path, json=body, headers=_auth(keys, path))
        same_worker = one.post(path, json=body, headers=_auth(keys, path))
    with _signed_app(backend, tmp_path, keys) as two:  # ``one`` flushed its writes on close
        other_worker = two.post(path, json=body, headers=_auth(keys, path))
    assert [first.status_code, same_worker.status_code, other_worker.status_code] == [200] * 3
    assert first.json()["cards"], "low back pain on record gives a TPI status card"
    assert first.content == same_worker.content == other_worker.content
    issued = SqlFeedbackStore(backend.engine).card(first.json()["cards"][0]["uuid"])
    assert issued is not None and issued.hook_instance == body["hookInstance"]


def test_cds_bodies_up_to_16_mib_other_routes_keep_1_mib(backend: Backend, tmp_path: Path) -> None:
    """A 4 MiB prefetch (with an unknown key, ignored) is answered; 2 MiB elsewhere is 413."""
    keys = EhrKeys()
    path = "/cds-services/patient-view"
    body = _lbp_call()
    filler = [condition(f"Z{i:05d}", rid=f"x{i}") for i in range(20_000)]
    body["prefetch"]["somethingElse"] = bundle(*filler, kind="searchset")
    raw = orjson.dumps(body)
    assert len(raw) >= 4 * 1_048_576
    with _signed_app(backend, tmp_path, keys) as client:
        big = client.post(
            path, content=raw, headers={**_auth(keys, path), "content-type": "application/json"}
        )
        other = client.post(
            "/api/v1/assess", content=b"{" + b" " * (2 * 1_048_576) + b"}", headers={}
        )
    assert big.status_code == 200, big.text
    assert next(c["source"]["topic"]["code"] for c in big.json()["cards"]) == "tpi-status"
    assert other.status_code == 413


def test_admit_claims_the_jti_and_finds_the_answer_in_one_statement(backend: Backend) -> None:
    """The hook call's one request-path statement: first use of a jti True, a replay
    False; the answer stored for the (client, service, hookInstance) comes back with it.
    On PostgreSQL a connection the server dropped is replaced once, transparently."""
    from datetime import timedelta

    from triggerpath.services.feedback import Admission, HookCall

    store = SqlFeedbackStore(backend.engine)
    now = datetime.now(UTC).replace(microsecond=0)
    later = now + timedelta(minutes=10)
    client, instance = f"https://ehr-{uuid.uuid4()}.example", str(uuid.uuid4())
    assert store.admit(Admission(client, "j1", later, now, "order-select", instance)) == (
        True,
        None,
    )
    call = HookCall(client, "order-select", instance, "d" * 64, b'{"cards":[]}', now)
    store.record_calls([call])
    assert store.admit(Admission(client, "j2", later, now, "order-select", instance)) == (
        True,
        call,
    )
    assert store.admit(Admission(client, "j2", later, now, "order-select", instance)) == (
        False,
        call,
    )
    assert store.admit(Admission(client, "j3", later, now, "patient-view", instance)) == (
        True,
        None,
    )
    assert not store.claim(client, "j3", later, now)  # the same replay store as claim()
    if backend.name == "postgresql":
        with backend.engine.connect() as admin:  # the server drops the kept connection
            dropped = admin.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND query LIKE '%%cds_jti%%'"
            ).all()
        assert dropped
        assert store.admit(Admission(client, "j4", later, now, "order-select", instance)) == (
            True,
            call,
        )
