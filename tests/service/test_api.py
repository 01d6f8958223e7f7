"""The REST API on SQLite and PostgreSQL: probes, problem details, clinical flow,
concurrency over HTTP, pagination, sign-in, size limits, logs without patient data."""

from __future__ import annotations

import base64
import logging
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from triggerpath.adapters import database
from triggerpath.domain.engine import assess
from triggerpath.domain.validation import parse_assessment
from triggerpath.entrypoints.api import create_app
from triggerpath.knowledge import Knowledge
from triggerpath.services.auth import CSRF_HEADER, SESSION_COOKIE

from ..conftest import AS_OF, IDENTITY, example
from .conftest import PASSWORD, Service, make_settings

PROBLEM = "application/problem+json"


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["type"].startswith("https://")
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body["errors"]}


# --------------------------------------------------------------------------- probes
def test_probes_and_docs(service: Service) -> None:
    c = service.client
    assert c.get("/healthz").json() == {"status": "ok"}
    ready = c.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["migration"] == database.head_revision()
    docs = c.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = c.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/patients" in spec["paths"] and "/api/v1/assess" in spec["paths"]


def test_readyz_is_503_until_migrations_run(tmp_path: Any) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'fresh.db'}", tmp_path)
    client = TestClient(create_app(settings))
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["status"] == "not_ready"
    assert client.get("/healthz").status_code == 200
    database.upgrade(client.app.state.tp.engine)  # type: ignore[attr-defined]
    assert client.get("/readyz").status_code == 200


# --------------------------------------------------------------------------- problems
def test_unauthenticated_request_for_patient_data_is_401(service: Service) -> None:
    patient = service.patient()
    for path in ("/api/v1/patients", f"/api/v1/patients/{patient['id']}"):
        r = service.client.get(path)
        body = problem(r, 401)
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "MRN" not in r.text and patient["data"]["mrn"] not in r.text
    bogus = {"Authorization": "Bearer tp_not-a-real-key"}
    problem(service.client.get("/api/v1/patients", headers=bogus), 401)
    problem(service.client.get("/api/v1/patients", headers={"Authorization": "Basic eDp5"}), 401)
    assert body["instance"].startswith("/api/v1/patients")


def test_malformed_json_is_400_problem_details(service: Service) -> None:
    r = service.post(
        "/api/v1/patients",
        content=b'{"mrn": "A1", "sex": ',
        headers={"Content-Type": "application/json"},
    )
    body = problem(r, 400)
    assert fields(body) == {"(body)"} and "JSON" in body["errors"][0]["reason"]


def test_invalid_fields_are_422_naming_each_field(service: Service) -> None:
    r = service.post("/api/v1/patients", json={"mrn": "", "sex": "x", "birth_year": 1800, "n": 1})
    assert fields(problem(r, 422)) == {"mrn", "sex", "birth_year", "n"}
    r = service.get("/api/v1/patients?limit=0")
    assert fields(problem(r, 422)) == {"query.limit"}
    r = service.get("/api/v1/patients/not-a-uuid")
    assert fields(problem(r, 422)) == {"path.record_id"}


def test_assessment_input_errors_carry_their_path(service: Service) -> None:
    episode = service.episode(service.patient()["id"])
    data = example("ql_chronic_low_back")
    data["trigger_points"][0]["muscle"] = "biceps"
    data["patient"]["sex"] = "male"
    data["patient"]["pregnant"] = True
    url = f"/api/v1/episodes/{episode['id']}/assessments"
    body = problem(service.post(url, json={"input": data}), 422)
    assert fields(body) == {"input.patient.pregnant"}
    data["patient"]["pregnant"] = False
    body = problem(service.post(url, json={"input": data}), 422)
    assert fields(body) == {"input.trigger_points[0].muscle"}


def test_unknown_record_is_404_and_wrong_kind_too(service: Service) -> None:
    problem(service.get(f"/api/v1/patients/{uuid.uuid4()}"), 404)
    episode = service.episode(service.patient()["id"])
    problem(service.get(f"/api/v1/patients/{episode['id']}"), 404)


def test_request_size_limit_is_413(service: Service) -> None:
    big = {"mrn": "BIG", "sex": "male", "pad": "x" * (service.settings.max_request_bytes + 10)}
    problem(service.post("/api/v1/patients", json=big), 413)

    def chunks() -> Any:
        for _ in range(64):
            yield b"x" * (service.settings.max_request_bytes // 32)

    r = service.post(
        "/api/v1/patients", content=chunks(), headers={"Content-Type": "application/json"}
    )
    problem(r, 413)


# --------------------------------------------------------------------------- clinical flow
def test_clinical_flow_from_patient_to_documents(service: Service, kb: Knowledge) -> None:
    patient = service.patient(birth_year=1971)
    # two identifiers and the MRN; nothing more is kept (no address, no contact details)
    assert set(patient["data"]) == {
        "mrn",
        "family_name",
        "given_name",
        "birth_date",
        "birth_year",
        "sex",
    }
    onset = date.today() - timedelta(weeks=20)
    episode = service.episode(patient["id"], onset=onset.isoformat())
    # phase from the onset by the knowledge base's bounds: > 12 weeks is chronic
    # (van Tulder 2006 / Airaksinen 2006, pathway.yaml duration_phases)
    assert episode["phase"] == "chronic" and episode["patient_id"] == patient["id"]

    a = service.assessment(episode["id"])
    expected = assess(parse_assessment(example("ql_chronic_low_back"), kb), kb, as_of=AS_OF)
    stored = a["data"]
    assert stored["result"]["verdict"] == expected.verdict == "tpi_appropriate"
    assert stored["result"] == expected.model_dump(mode="json")
    assert stored["knowledge_version"] == kb.version and stored["as_of"] == AS_OF.isoformat()
    assert next(iter(stored["result"])) == "verdict"  # key order survives the database
    assert a["version"] == 1 and a["signed_at"] is None and a["verdict"] == "tpi_appropriate"

    signed = service.ok(
        service.post(
            f"/api/v1/assessments/{a['id']}/sign", json={"version": 1, "password": PASSWORD}
        ),
        200,
    )
    assert signed["version"] == 2 and signed["signed_by"] == service.usernames["clinician"]
    body = problem(
        service.put(
            f"/api/v1/assessments/{a['id']}",
            json={"version": 2, "reason": "late finding", "data": {"input": example("warfarin")}},
        ),
        409,
    )
    assert "signed" in body["detail"]
    rerun = service.post(f"/api/v1/assessments/{a['id']}/reassess", role="viewer")
    assert rerun.status_code == 200 and rerun.json()["verdict"] == "tpi_appropriate"

    plan = service.plan(a["id"])
    assert plan["parent_id"] == a["id"] and plan["patient_id"] == patient["id"]

    # a nurse records the session performed by the clinician (issue 14 §7: the operator is
    # the signed-in nurse, the clinician the performer, unattested until they attest it);
    # mg from % w/v x mL: 1 % = 1 g/100 mL = 10 mg/mL, so 3 mL of 1 % lidocaine = 30 mg
    session = service.session(
        episode["id"],
        role="nurse",
        performer=service.usernames["clinician"],
        plan_id=plan["id"],
    )
    assert session["recorded_by"] == service.usernames["nurse"]
    assert session["data"]["operator"] == service.usernames["nurse"]
    assert session["data"]["performer"] == service.usernames["clinician"]
    assert session["data"]["attestation"] == "unattested"
    assert session["data"]["sites"][0]["mg"] == 30.0
    assert session["data"]["total_mg_by_agent"] == {"lidocaine": 30.0}
    # the plan put 1.5 mL of 1 % lidocaine (3 x 1 mL, 1:1 saline) into the right QL: 3 mL is more
    assert [d["kind"] for d in session["data"]["deviations"]] == ["more_volume"]
    attest_url = f"/api/v1/sessions/{session['id']}/attest"
    assert service.post(attest_url, role="nurse", json={"version": 1}).status_code == 403
    attested = service.ok(service.post(attest_url, json={"version": 1}), 200)
    assert attested["data"]["attestation"] == "attested"
    assert attested["data"]["attested_by"] == service.usernames["clinician"]
    outcome = service.outcome(episode["id"], role="nurse")
    assert outcome["data"]["instrument"] == "nrs"

    doc = service.document(patient["id"])
    assert doc["data"]["size_bytes"] == len(b"Report body") and "content_base64" not in doc["data"]
    content = service.get(f"/api/v1/documents/{doc['id']}/content", role="viewer")
    assert content.content == b"Report body" and content.headers["content-type"].startswith(
        "text/plain"
    )
    hist = service.get(f"/api/v1/documents/{doc['id']}/history").json()
    assert "content_base64" not in hist["versions"][0]["data"]

    # lists under each parent
    pid, eid = patient["id"], episode["id"]
    for url, count in (
        (f"/api/v1/patients/{pid}/episodes", 1),
        (f"/api/v1/episodes/{eid}/assessments", 1),
        (f"/api/v1/assessments/{a['id']}/plans", 1),
        (f"/api/v1/episodes/{eid}/sessions", 1),
        (f"/api/v1/episodes/{eid}/outcomes", 1),
        (f"/api/v1/patients/{pid}/documents", 1),
    ):
        assert service.get(url, role="viewer").json()["total"] == count, url
    found = service.get("/api/v1/patients", params={"mrn": patient["data"]["mrn"]}).json()
    assert [p["id"] for p in found["items"]] == [pid]


def test_old_assessments_stay_readable_exactly_as_stored(service: Service) -> None:
    """A record made under another schema is returned unchanged, never re-validated."""
    episode = service.episode(service.patient()["id"])
    a = service.assessment(episode["id"])
    old = {**a["data"], "input": {**a["data"]["input"], "retired_field": True}}
    old["result"] = {**old["result"], "field_from_2025": "kept"}
    service.store_as_an_older_build_wrote_it(a["id"], old)
    got = service.get(f"/api/v1/assessments/{a['id']}")
    assert got.status_code == 200 and got.json()["data"] == old
    r = service.post(f"/api/v1/assessments/{a['id']}/reassess")
    assert fields(problem(r, 422)) == {"input.retired_field"}


def test_a_record_stored_under_another_schema_is_a_409_naming_it_never_a_500(
    service: Service,
) -> None:
    """History is append-only: a stored assessment today's schema refuses makes the course and
    the FHIR export answer 409 naming the record and the field, and nothing is changed."""
    episode = service.episode(service.patient()["id"])
    a = service.assessment(episode["id"])
    old = {**a["data"], "input": {**a["data"]["input"], "retired_field": True}}
    service.store_as_an_older_build_wrote_it(a["id"], old)
    for path in (
        f"/api/v1/episodes/{episode['id']}/course",
        f"/api/v1/episodes/{episode['id']}/fhir-bundle",
    ):
        r = service.get(path)
        assert r.status_code == 409, (path, r.text)
        assert a["id"] in r.json()["detail"] and "input.retired_field" in r.json()["detail"]
    assert service.get(f"/api/v1/assessments/{a['id']}").json()["data"] == old  # unchanged


def test_session_mg_that_disagrees_with_volume_is_refused(service: Service) -> None:
    episode = service.episode(service.patient()["id"])
    body = {
        "performed_at": "2026-11-21T10:00:00Z",
        "sites": [
            {
                "muscle": "quadratus_lumborum",
                "side": "left",
                "agent": "lidocaine",
                "concentration_percent": 0.5,
                "volume_ml": 4,
                "mg": 40,
            }
        ],
    }
    r = service.post(f"/api/v1/episodes/{episode['id']}/sessions", json=body)
    err = problem(r, 422)
    # 4 mL of 0.5 % = 20 mg (0.5 % w/v = 5 mg/mL), not 40
    assert fields(err) == {"sites[0].mg"} and "20 mg" in err["errors"][0]["reason"]


def test_two_clinicians_edit_the_same_record_the_second_gets_409(service: Service) -> None:
    patient = service.patient(birth_year=1950)
    url = f"/api/v1/patients/{patient['id']}"
    first = service.put(
        url,
        json={
            "version": 1,
            "reason": "year corrected",
            "data": {**patient["data"], "sex": "female"},
        },
    )
    assert first.status_code == 200 and first.json()["version"] == 2
    second = service.put(
        url,
        json={
            "version": 1,
            "reason": "year corrected",
            "data": {**patient["data"], "birth_date": "1951-05-17", "birth_year": 1951},
        },
    )
    body = problem(second, 409)
    assert body["current_version"] == 2
    # the second clinician reloads and reapplies: both changes are kept, in order
    current = service.get(url).json()
    again = service.put(
        url,
        json={
            "version": current["version"],
            "reason": "birth year from the referral letter",
            "data": {**current["data"], "birth_date": "1951-05-17", "birth_year": 1951},
        },
    )
    assert again.status_code == 200
    hist = service.get(f"{url}/history", role="viewer").json()
    assert [v["version"] for v in hist["versions"]] == [1, 2, 3]
    assert hist["versions"][2]["data"] == {
        **patient["data"],
        "sex": "female",
        "birth_date": "1951-05-17",
        "birth_year": 1951,
    }
    assert [v["reason"] for v in hist["versions"]][1:] == [
        "year corrected",
        "birth year from the referral letter",
    ]


def test_retracted_records_leave_lists_but_stay_in_history(service: Service) -> None:
    patient = service.patient()
    episode = service.episode(patient["id"])
    url = f"/api/v1/episodes/{episode['id']}"
    r = service.post(f"{url}/retract", json={"version": 1, "reason": "wrong patient"})
    assert r.status_code == 200 and r.json()["status"] == "entered_in_error"
    listing = f"/api/v1/patients/{patient['id']}/episodes"
    assert service.get(listing).json()["total"] == 0
    assert service.get(listing, params={"include_retracted": True}).json()["total"] == 1
    problem(service.post(f"{url}/assessments", json={"input": example("warfarin")}), 409)
    assert len(service.get(f"{url}/history").json()["versions"]) == 2


def test_pagination_is_stable_and_complete(service: Service) -> None:
    patient = service.patient()
    made = [service.episode(patient["id"])["id"] for _ in range(5)]
    url = f"/api/v1/patients/{patient['id']}/episodes"
    pages = [service.get(url, params={"limit": 2, "offset": o}).json() for o in (0, 2, 4)]
    assert [p["total"] for p in pages] == [5, 5, 5]
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    assert [e["id"] for p in pages for e in p["items"]] == made


def test_compute_assess_on_posted_data(service: Service, kb: Knowledge) -> None:
    data = example("sciatica_below_knee")
    r = service.post("/api/v1/assess", role="nurse", json=data, params={"as_of": "2026-11-21"})
    assert r.status_code == 200
    rec = r.json()
    assert rec["verdict"] == "not_indicated" and rec["redirect"] == "epidural_steroid_injection"
    assert all(reason["statement_ids"] for reason in rec["reasons"])
    data["trigger_points"] = [{"muscle": "nope", "side": "left"}]
    assert fields(problem(service.post("/api/v1/assess", json=data), 422)) == {
        "trigger_points[0].muscle"
    }


# --------------------------------------------------------------------------- sign-in
def test_browser_session_cookie_flags_and_csrf(service: Service) -> None:
    name = service.usernames["clinician"]
    r = service.client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie
    token = r.cookies.get(SESSION_COOKIE) or cookie.split("=", 1)[1].split(";")[0]
    csrf = r.json()["csrf_token"]
    jar = {"Cookie": f"{SESSION_COOKIE}={token}"}
    assert service.client.get("/api/v1/auth/me", headers=jar).json()["username"] == name
    body = {**IDENTITY, "mrn": f"C-{uuid.uuid4().hex[:8]}", "sex": "female"}
    problem(service.client.post("/api/v1/patients", json=body, headers=jar), 403)
    made = service.client.post("/api/v1/patients", json=body, headers={**jar, CSRF_HEADER: csrf})
    assert made.status_code == 201
    problem(service.client.post("/api/v1/auth/logout", headers=jar), 403)  # logout CSRF too
    logout = service.client.post("/api/v1/auth/logout", headers={**jar, CSRF_HEADER: csrf})
    assert logout.status_code == 204
    problem(service.client.get("/api/v1/auth/me", headers=jar), 401)


def test_wrong_password_is_401_and_audited(service: Service) -> None:
    mark = service.watermark()
    r = service.client.post(
        "/api/v1/auth/login",
        json={"username": service.usernames["nurse"], "password": "not the password"},
    )
    problem(r, 401)
    events = service.events_after(mark)
    assert [(e.action, e.outcome, e.actor) for e in events] == [
        ("auth.login", "denied", service.usernames["nurse"])
    ]


def test_jwt_bearer_tokens(service: Service) -> None:
    name = service.usernames["viewer"]
    r = service.client.post("/api/v1/auth/token", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200 and r.json()["token_type"] == "bearer"
    jwt = r.json()["access_token"]
    me = service.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {jwt}"})
    assert me.json() == {"username": name, "role": "viewer"}
    tampered = jwt[:-2] + ("AA" if not jwt.endswith("AA") else "BB")
    problem(
        service.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {tampered}"}), 401
    )


def test_revoked_key_and_deactivated_user_lose_access_at_once(service: Service) -> None:
    made = service.post(
        "/api/v1/users",
        role="admin",
        json={"username": f"tmp-{uuid.uuid4().hex[:6]}", "role": "viewer"},
    )
    user = service.ok(made)
    assert user["has_password"] is False
    key = service.ok(
        service.post(f"/api/v1/users/{user['id']}/api-keys", role="admin", json={"name": "ci"})
    )
    auth = {"Authorization": f"Bearer {key['token']}"}
    assert service.client.get("/api/v1/auth/me", headers=auth).status_code == 200
    r = service.request("DELETE", f"/api/v1/users/{user['id']}/api-keys/{key['id']}", role="admin")
    assert r.status_code == 204
    problem(service.client.get("/api/v1/auth/me", headers=auth), 401)

    key2 = service.ok(
        service.post(f"/api/v1/users/{user['id']}/api-keys", role="admin", json={"name": "ci2"})
    )
    auth2 = {"Authorization": f"Bearer {key2['token']}"}
    r = service.request(
        "PATCH", f"/api/v1/users/{user['id']}", role="admin", json={"active": False}
    )
    assert r.status_code == 200 and r.json()["active"] is False
    problem(service.client.get("/api/v1/auth/me", headers=auth2), 401)


# --------------------------------------------------------------------------- logs
def test_application_logs_hold_no_patient_data(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    mrn = f"LOG-{uuid.uuid4().hex[:10]}"
    with caplog.at_level(logging.DEBUG):
        patient = service.patient(mrn=mrn)
        service.get("/api/v1/patients", params={"mrn": mrn})
        service.get(f"/api/v1/patients/{patient['id']}")
        service.post(
            "/api/v1/patients", json={**IDENTITY, "mrn": mrn, "sex": "male"}
        )  # 409 names no MRN
    # everything the service side logged (httpx is the test's own client)
    text = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    assert "/api/v1/patients/{record_id}" in text  # the access log names route templates
    assert mrn not in text and patient["id"] not in text
    assert base64.b64encode(mrn.encode()).decode() not in text
