"""The CDS Hooks 2.0 HTTP service: discovery, calls, prefetch or fetch, 412, auth, feedback.

The example requests follow the CDS Hooks 2.0 specification's own examples (patient 1288992,
hookInstance d1577c69-…, the order-sign R4 draft orders with a NutritionOrder and an
amoxicillin MedicationRequest). No network: the EHR's FHIR server is an httpx MockTransport
and the EHR's keys are generated locally with an inline JWKS.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from triggerpath.entrypoints.api.cds_hooks import CdsConfig, cds_router, prefetch_keys
from triggerpath.errors import InvalidInput
from triggerpath.knowledge import Knowledge
from triggerpath.services.feedback import InMemoryFeedbackStore

from .cds_helpers import (
    NOW,
    EhrKeys,
    as_prefetch,
    bundle,
    condition,
    hook_request,
    load,
    med_request,
    order_statuses,
    patient,
    synthea_files,
    tpi_service_request,
)

BASE = "http://testserver"
SPEC_PATIENT = {
    "resourceType": "Patient",
    "gender": "male",
    "birthDate": "1925-12-23",
    "id": "1288992",
    "active": True,
}


class Settings:
    def __init__(self, **values: Any) -> None:
        self.env = "production"
        self.__dict__.update(values)


def make_app(
    kb: Knowledge,
    *,
    keys: EhrKeys | None = None,
    env: str = "production",
    handler: Any = None,
    store: InMemoryFeedbackStore | None = None,
    **settings: Any,
) -> tuple[TestClient, InMemoryFeedbackStore]:
    store = store or InMemoryFeedbackStore()
    clients = {keys.issuer: {"jwks": keys.jwks()}} if keys else {}
    transport = httpx.MockTransport(handler) if handler else None
    app = FastAPI()
    app.include_router(
        cds_router(
            Settings(env=env, cds_trusted_clients=clients, **settings),
            store,
            knowledge=kb,
            transport=transport,
            clock=lambda: NOW,
        )
    )
    return TestClient(app), store


def auth(keys: EhrKeys, path: str, **kw: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys.token(BASE + path, **kw)}"}


def minimal_prefetch(pid: str = "p1", *resources: dict[str, Any]) -> dict[str, Any]:
    meds = [r for r in resources if r["resourceType"] == "MedicationRequest"]
    conds = [r for r in resources if r["resourceType"] == "Condition"]
    return {
        "patient": patient(pid),
        "conditions": bundle(*conds, kind="searchset") if conds else None,
        "medicationRequests": bundle(*meds, kind="searchset") if meds else None,
        "allergies": None,
    }


@pytest.fixture(scope="module")
def keys() -> EhrKeys:
    return EhrKeys()


def codes(response: httpx.Response) -> list[str]:
    return [c["source"]["topic"]["code"] for c in response.json()["cards"]]


# --------------------------------------------------------------------------- discovery
def test_discovery_lists_the_three_services(kb: Knowledge, keys: EhrKeys) -> None:
    client, _ = make_app(kb, keys=keys)
    r = client.get("/cds-services", headers=auth(keys, "/cds-services"))
    assert r.status_code == 200
    services = {s["id"]: s for s in r.json()["services"]}
    assert set(services) == {"patient-view", "order-select", "order-sign"}
    for sid, s in services.items():
        assert s["hook"] == sid and s["title"] and s["description"]
        assert s["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert "code=http://loinc.org|29463-7" in s["prefetch"]["weight"]
        assert "20552" in s["prefetch"]["tpiProcedures"]


def test_discovery_needs_a_token_outside_development(kb: Knowledge, keys: EhrKeys) -> None:
    client, _ = make_app(kb, keys=keys)
    r = client.get("/cds-services")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    dev, _ = make_app(kb, env="development")
    assert dev.get("/cds-services").status_code == 200


# --------------------------------------------------------------------------- authentication
@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_signed_jwt_from_a_registered_ehr(kb: Knowledge, keys: EhrKeys, alg: str) -> None:
    client, _ = make_app(kb, keys=keys)
    body = hook_request("patient-view", "p1", minimal_prefetch())
    r = client.post(
        "/cds-services/patient-view",
        json=body,
        headers=auth(keys, "/cds-services/patient-view", alg=alg),
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("case", "detail"),
    [
        ("wrong_audience", "JWT rejected"),
        ("expired", "JWT rejected"),
        ("unknown_issuer", "not registered"),
        ("foreign_key", "JWT rejected"),
        ("hmac", "not accepted"),
        ("bad_jku", "jku"),
        ("replay", "replay"),
        ("not_bearer", "Bearer"),
        ("tampered", "Signature verification failed"),
        ("key_of_another_type", "Signature verification failed"),
        ("no_jti", "'jti' claim"),
        ("audience_list_without_us", "Audience"),
    ],
)
def test_bad_tokens_are_refused(kb: Knowledge, keys: EhrKeys, case: str, detail: str) -> None:
    client, _ = make_app(kb, keys=keys)
    path = "/cds-services/patient-view"
    body = hook_request("patient-view", "p1", minimal_prefetch())
    headers: dict[str, str]
    if case == "wrong_audience":
        headers = auth(keys, "/cds-services/order-sign")
    elif case == "expired":
        headers = auth(keys, path, now=NOW - timedelta(hours=1))
    elif case == "unknown_issuer":
        headers = auth(keys, path, issuer="https://evil.example")
    elif case == "foreign_key":
        other = EhrKeys(keys.issuer)  # same issuer and kid, another private key
        headers = {"Authorization": f"Bearer {other.token(BASE + path)}"}
    elif case == "hmac":
        import jwt

        token = jwt.encode(
            {"iss": keys.issuer, "aud": BASE + path, "exp": 9e9, "iat": 1, "jti": "x"},
            "shared-secret-" * 5,
            algorithm="HS384",
            headers={"kid": "ec-1"},
        )
        headers = {"Authorization": f"Bearer {token}"}
    elif case == "bad_jku":
        headers = auth(keys, path, header={"jku": "https://evil.example/jwks"})
    elif case == "replay":
        headers = auth(keys, path, jti="same")
        assert client.post(path, json=body, headers=headers).status_code == 200
    elif case == "tampered":  # claims changed after signing: the signature no longer holds
        head, _, sig = keys.token(BASE + path).split(".")
        forged = keys.token(BASE + path, jti="chosen-by-attacker").split(".")[1]
        headers = {"Authorization": f"Bearer {head}.{forged}.{sig}"}
    elif case == "key_of_another_type":  # an ES384 token naming the EHR's RSA key
        headers = auth(keys, path, header={"kid": "rsa-1"})
    elif case == "no_jti":
        import jwt

        no_jti = {"iss": keys.issuer, "aud": BASE + path, "exp": 9e9, "iat": NOW.timestamp()}
        token = jwt.encode(no_jti, keys.ec, algorithm="ES384", headers={"kid": "ec-1"})
        headers = {"Authorization": f"Bearer {token}"}
    elif case == "audience_list_without_us":
        import jwt

        elsewhere = {
            "iss": keys.issuer,
            "aud": [BASE + "/cds-services/order-sign", "https://other.example"],
            "exp": NOW.timestamp() + 300,
            "iat": NOW.timestamp(),
            "jti": "j-aud",
        }
        token = jwt.encode(elsewhere, keys.ec, algorithm="ES384", headers={"kid": "ec-1"})
        headers = {"Authorization": f"Bearer {token}"}
    else:
        headers = {"Authorization": "Basic abc"}
    r = client.post(path, json=body, headers=headers)
    assert r.status_code == 401
    assert detail in r.json()["detail"]


def test_jwks_url_is_fetched_and_cached(kb: Knowledge, keys: EhrKeys) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(200, json=keys.jwks())

    app = FastAPI()
    clients = {keys.issuer: {"jwks_url": "https://ehr.example.org/jwks"}}
    app.include_router(
        cds_router(
            Settings(cds_trusted_clients=clients),
            knowledge=kb,
            transport=httpx.MockTransport(handler),
            clock=lambda: NOW,
        )
    )
    client = TestClient(app)
    for _ in range(2):
        r = client.get("/cds-services", headers=auth(keys, "/cds-services"))
        assert r.status_code == 200
    assert calls == ["https://ehr.example.org/jwks"]


def test_an_unknown_kid_refetches_the_jwks_at_most_every_10_s(kb: Knowledge) -> None:
    """Key rotation: a token with a new kid makes us fetch the JWKS again, but random kids
    cannot make us hammer the EHR (one refetch per 10 s)."""
    old, new = EhrKeys(), EhrKeys()
    served = {"jwks": old.jwks()}
    calls: list[str] = []
    now = [NOW]

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(200, json=served["jwks"])

    app = FastAPI()
    clients = {old.issuer: {"jwks_url": "https://ehr.example.org/jwks"}}
    app.include_router(
        cds_router(
            Settings(cds_trusted_clients=clients),
            knowledge=kb,
            transport=httpx.MockTransport(handler),
            clock=lambda: now[0],
        )
    )
    client = TestClient(app)
    path = "/cds-services"
    assert client.get(path, headers=auth(old, path, now=now[0])).status_code == 200
    # the EHR rotates to a new key under the same kid name "ec-1" and issuer
    served["jwks"] = new.jwks()
    for k in served["jwks"]["keys"]:
        k["kid"] = "ec-2" if k["kid"] == "ec-1" else "rsa-2"
    rotated = new.token(BASE + path, now=now[0], header={"kid": "ec-2"})
    r = client.get(path, headers={"Authorization": f"Bearer {rotated}"})
    assert r.status_code == 401 and len(calls) == 1  # cache 0 s old: no refetch yet
    now[0] = NOW + timedelta(seconds=11)
    rotated = new.token(BASE + path, now=now[0], header={"kid": "ec-2"})
    r = client.get(path, headers={"Authorization": f"Bearer {rotated}"})
    assert r.status_code == 200 and len(calls) == 2  # unknown kid: fetched again


def test_configuration_problems_name_the_setting() -> None:
    with pytest.raises(InvalidInput) as info:
        CdsConfig.from_settings(
            Settings(
                cds_trusted_clients={"https://ehr": {"jwks_url": "http://plain"}, "x": {}},
                cds_fhir_timeout_seconds=0,
            )
        )
    fields = {p.field for p in info.value.problems}
    assert fields == {
        "cds_trusted_clients.https://ehr.jwks_url",
        "cds_trusted_clients.x",
        "cds_fhir_timeout_seconds",
    }
    cfg = CdsConfig.from_settings(Settings(env="development", cds_trusted_clients="{}"))
    assert cfg.development and cfg.fhir_timeout_seconds == 2.0


# --------------------------------------------------------------------------- the spec's examples
def test_spec_patient_view_example_prefetch_is_incomplete_so_the_server_is_asked(
    kb: Knowledge,
) -> None:
    """The spec's patient-view example: prefetch 'patientToGreet' only, and a fhirServer."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        assert request.headers["authorization"] == "Bearer some-opaque-fhir-access-token"
        if request.url.path.endswith("/Patient/1288992"):
            return httpx.Response(200, json=SPEC_PATIENT)
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset"})

    client, _ = make_app(kb, env="development", handler=handler)
    body = hook_request(
        "patient-view", "1288992", fhir_server="http://hooks.smarthealthit.org:9080"
    )
    body["hookInstance"] = "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"
    body["context"]["encounterId"] = "89284"
    body["prefetch"] = {"patientToGreet": SPEC_PATIENT}
    r = client.post("/cds-services/patient-view", json=body)
    assert r.status_code == 200
    assert r.json() == {"cards": []}  # no back pain on record: nothing to say
    assert "/Patient/1288992" in seen and "/Condition" in seen and "/AllergyIntolerance" in seen


def test_spec_order_sign_example_has_no_tpi_order(kb: Knowledge) -> None:
    """The spec's R4 order-sign example (pureed diet + amoxicillin): no TPI, no cards."""
    nutrition = {
        "resourceType": "NutritionOrder",
        "id": "pureeddiet-simple",
        "status": "draft",
        "intent": "order",
        "patient": {"reference": "Patient/1288992"},
        "dateTime": "2014-09-17",
    }
    amoxicillin = med_request(
        "617993",
        "Amoxicillin 120 MG/ML / clavulanate potassium 8.58 MG/ML Oral Suspension",
        status="draft",
        pid="1288992",
        rid="smart-MedicationRequest-103",
    )
    client, _ = make_app(kb, env="development")
    body = hook_request(
        "order-sign",
        "1288992",
        {**minimal_prefetch("1288992"), "patient": SPEC_PATIENT},
        draft_orders=bundle(nutrition, amoxicillin),
    )
    r = client.post("/cds-services/order-sign", json=body)
    assert r.status_code == 200 and r.json() == {"cards": []}
    # the same call with a TPI order among the drafts gives cards tied to it
    body["context"]["draftOrders"]["entry"].append({"resource": tpi_service_request(pid="1288992")})
    r = client.post("/cds-services/order-sign", json=body)
    cards = r.json()["cards"]
    assert cards and all(
        c["extension"]["org.triggerpath.draft-orders"] == ["ServiceRequest/tpi-1"] for c in cards
    )


def test_spec_order_select_example_uses_selections(kb: Knowledge) -> None:
    client, _ = make_app(kb, env="development")
    prefetch = minimal_prefetch("p1", med_request("855332", "Warfarin Sodium 5 MG Oral Tablet"))
    draft = bundle(
        tpi_service_request("sr-tpi"), med_request("617993", "Amoxicillin", status="draft")
    )
    body = hook_request(
        "order-select", "p1", prefetch, draft_orders=draft, selections=["ServiceRequest/sr-tpi"]
    )
    r = client.post("/cds-services/order-select", json=body)
    assert "caution-anticoagulant" in codes(r)
    body["context"]["selections"] = ["MedicationRequest/m-617993-draft"]
    assert client.post("/cds-services/order-select", json=body).json() == {"cards": []}


# --------------------------------------------------------------------------- data access
def test_412_when_required_data_cannot_be_had(kb: Knowledge) -> None:
    client, _ = make_app(kb, env="development")
    body = hook_request("patient-view", "p1", {"patient": patient()})
    r = client.post("/cds-services/patient-view", json=body)
    assert r.status_code == 412
    assert set(r.json()["missing"]) == {"conditions", "medicationRequests", "allergies"}
    empty = client.post("/cds-services/patient-view", json=hook_request("patient-view", "p1"))
    assert empty.status_code == 412 and "patient" in empty.json()["missing"]
    wrong = client.post(
        "/cds-services/patient-view", json=hook_request("patient-view", "p9", minimal_prefetch())
    )
    assert wrong.status_code == 412


def test_412_when_the_fhir_server_refuses(kb: Knowledge) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"resourceType": "OperationOutcome"})

    client, _ = make_app(kb, env="development", handler=handler)
    body = hook_request("patient-view", "p1", fhir_server="https://ehr.example.org/fhir")
    r = client.post("/cds-services/patient-view", json=body)
    assert r.status_code == 412


def test_a_slow_fhir_server_gives_an_explanatory_card(kb: Knowledge) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)  # far beyond the configured deadline
        return httpx.Response(200, json={})

    client, _ = make_app(kb, env="development", handler=handler, cds_fhir_timeout_seconds=0.05)
    body = hook_request(
        "order-sign",
        "p1",
        draft_orders=bundle(tpi_service_request()),
        fhir_server="https://ehr.example.org/fhir",
    )
    r = client.post("/cds-services/order-sign", json=body)
    assert r.status_code == 200
    (card,) = r.json()["cards"]
    assert card["indicator"] == "warning"
    assert card["source"]["topic"]["code"] == "source-unavailable"
    assert "did not answer within 0.05 s" in card["detail"]


def test_fetches_only_what_the_prefetch_lacks_and_follows_pages(kb: Knowledge) -> None:
    seen: list[str] = []
    warfarin = med_request("855332", "Warfarin Sodium 5 MG Oral Tablet")

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.params.get("page") == "2":
            return httpx.Response(200, json=bundle(warfarin, kind="searchset"))
        if request.url.path.endswith("/MedicationRequest"):
            page = bundle(kind="searchset")
            page["link"] = [
                {"relation": "next", "url": "https://ehr.example.org/fhir/MedicationRequest?page=2"}
            ]
            return httpx.Response(200, json=page)
        return httpx.Response(200, json=bundle(kind="searchset"))

    client, _ = make_app(kb, env="development", handler=handler)
    prefetch = {"patient": patient(), "conditions": None, "allergies": None}
    body = hook_request(
        "order-sign",
        "p1",
        prefetch,
        draft_orders=bundle(tpi_service_request()),
        fhir_server="https://ehr.example.org/fhir",
    )
    r = client.post("/cds-services/order-sign", json=body)
    assert r.status_code == 200
    assert "caution-anticoagulant" in codes(r)
    assert not any("/Patient/" in u or "/Condition" in u for u in seen)  # prefetched
    assert any("page=2" in u for u in seen)


def test_fhir_server_allowlist(kb: Knowledge) -> None:
    client, _ = make_app(
        kb,
        env="development",
        handler=lambda r: httpx.Response(200, json={}),
        cds_fhir_server_allowlist="https://ehr.example.org/",
    )
    body = hook_request("patient-view", "p1", fhir_server="https://elsewhere.example/fhir")
    r = client.post("/cds-services/patient-view", json=body)
    assert r.status_code == 412 and "not allowed" in r.json()["detail"]


def test_malformed_calls(kb: Knowledge) -> None:
    client, _ = make_app(kb, env="development")
    r = client.post("/cds-services/order-sign", json={"hook": "patient-view", "context": {}})
    assert r.status_code == 400
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"hook", "hookInstance", "context.patientId", "context.draftOrders"}
    r = client.post(
        "/cds-services/order-select",
        json=hook_request("order-select", "p1", minimal_prefetch(), draft_orders=bundle()),
    )
    assert {e["field"] for e in r.json()["errors"]} == {"context.selections"}
    assert client.post("/cds-services/nope", json={}).status_code == 404
    bad = hook_request("patient-view", "p1", {**minimal_prefetch(), "conditions": [1, 2]})
    r = client.post("/cds-services/patient-view", json=bad)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "prefetch.conditions"
    r = client.post(
        "/cds-services/patient-view", content=b"{", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400


# --------------------------------------------------------------------------- feedback
def test_feedback_is_stored_against_the_issued_card(kb: Knowledge, keys: EhrKeys) -> None:
    client, store = make_app(kb, keys=keys)
    prefetch = minimal_prefetch(
        "p1",
        condition("M54.16"),
        condition("M54.50", rid="lbp"),
        med_request("855332", "Warfarin Sodium 5 MG Oral Tablet"),
    )
    body = hook_request("order-sign", "p1", prefetch, draft_orders=bundle(tpi_service_request()))
    r = client.post(
        "/cds-services/order-sign", json=body, headers=auth(keys, "/cds-services/order-sign")
    )
    cards = {c["source"]["topic"]["code"]: c for c in r.json()["cards"]}
    redirect, pt = cards["non-myofascial"], cards["caution-anticoagulant"]
    feedback = {
        "feedback": [
            {
                "card": redirect["uuid"],
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": redirect["suggestions"][0]["uuid"]}],
                "outcomeTimestamp": "2020-01-01T12:01:00Z",
            },
            {
                "card": pt["uuid"],
                "outcome": "overridden",
                "overrideReason": {
                    "reason": redirect["overrideReasons"][1],
                    "userComment": "Examined today; findings in the note.",
                },
                "outcomeTimestamp": "2020-01-01T12:02:00Z",
            },
            {
                "card": "from-before-a-restart",
                "outcome": "overridden",
                "outcomeTimestamp": "2020-01-01T12:03:00Z",
            },
        ]
    }
    path = "/cds-services/order-sign/feedback"
    r = client.post(path, json=feedback, headers=auth(keys, path))
    assert r.status_code == 200
    assert r.json() == {"stored": 3, "unknownCards": ["from-before-a-restart"]}
    accepted = store.feedback(redirect["uuid"])[0]
    assert accepted.outcome == "accepted" and accepted.card_code == "non-myofascial"
    assert accepted.client == keys.issuer and accepted.card_known
    overridden = store.feedback(pt["uuid"])[0]
    assert overridden.override_code == "already-addressed"
    assert overridden.user_comment == "Examined today; findings in the note."
    issued = store.card(redirect["uuid"])
    assert issued is not None and issued.trace["rule"] == "pain_generator"
    assert issued.draft_orders == ("ServiceRequest/tpi-1",)


def test_bad_feedback_is_refused_with_field_paths(kb: Knowledge) -> None:
    client, _ = make_app(kb, env="development")
    body = hook_request(
        "order-sign",
        "p1",
        minimal_prefetch("p1", condition("M54.16")),
        draft_orders=bundle(tpi_service_request()),
    )
    card = client.post("/cds-services/order-sign", json=body).json()["cards"][0]
    bad = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "accepted",
                "outcomeTimestamp": "2020-01-01T00:00:00Z",
            },
            {"card": card["uuid"], "outcome": "maybe", "outcomeTimestamp": "2020-01-01T00:00:00Z"},
            {"card": card["uuid"], "outcome": "overridden"},
            {
                "card": card["uuid"],
                "outcome": "accepted",
                "outcomeTimestamp": "2020-01-01T00:00:00Z",
                "acceptedSuggestions": [{"id": "not-a-suggestion"}],
            },
        ]
    }
    r = client.post("/cds-services/order-sign/feedback", json=bad)
    assert r.status_code == 400
    assert [e["field"] for e in r.json()["errors"]] == [
        "feedback[0].acceptedSuggestions",
        "feedback[1].outcome",
        "feedback[2].outcomeTimestamp",
        "feedback[3].acceptedSuggestions[0].id",
    ]
    wrong_service = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "outcomeTimestamp": "2020-01-01T00:00:00Z",
            }
        ]
    }
    r = client.post("/cds-services/patient-view/feedback", json=wrong_service)
    assert r.status_code == 400 and "issued by 'order-sign'" in r.json()["detail"]
    assert client.post("/cds-services/order-sign/feedback", json={}).status_code == 400


# --------------------------------------------------------------------------- Synthea end to end
def test_prefetch_templates_cover_what_the_reader_needs(kb: Knowledge) -> None:
    keys_ = {k.key: k for k in prefetch_keys(kb)}
    assert all(
        keys_[k].required for k in ("patient", "conditions", "medicationRequests", "allergies")
    )
    assert "status=active,on-hold" in keys_["medicationRequests"].template


@pytest.mark.shared_data
def test_synthea_order_sign_over_http(kb: Knowledge, keys: EhrKeys) -> None:
    """Real records sent as prefetch: active warfarin/clopidogrel orders give the caution."""
    client, _ = make_app(kb, keys=keys)
    path = "/cds-services/order-sign"
    checked = 0
    for file in synthea_files()[::4]:
        b = load(file)
        pid, prefetch = as_prefetch(b)
        body = hook_request(
            "order-sign", pid, prefetch, draft_orders=bundle(tpi_service_request(pid=pid))
        )
        r = client.post(path, json=body, headers=auth(keys, path))
        assert r.status_code == 200, r.text
        got = set(codes(r))
        assert ("caution-anticoagulant" in got) == ("active" in order_statuses(b, {"855332"}))
        assert ("caution-antiplatelet" in got) == ("active" in order_statuses(b, {"309362"}))
        assert all(len(c["summary"]) < 140 for c in r.json()["cards"])
        checked += 1
    assert checked == 35


def test_control_characters_in_a_hook_call_name_the_field(kb: Knowledge) -> None:
    """The one control-character rule (domain/text.py) on the body the route parses; FHIR
    strings may hold newlines (narratives, notes), other control characters are refused."""
    client, _ = make_app(kb, env="development")
    pat = {**patient("p1"), "text": {"status": "generated", "div": "<div>line one\nline two</div>"}}
    ok = hook_request("patient-view", "p1", {**minimal_prefetch("p1"), "patient": pat})
    assert client.post("/cds-services/patient-view", json=ok).status_code == 200
    bad = hook_request("patient-view", "p1", minimal_prefetch("p1"))
    bad["prefetch"]["patient"]["gender"] = "fe\x00male"
    r = client.post("/cds-services/patient-view", json=bad)
    assert r.status_code == 400
    assert [e["field"] for e in r.json()["errors"]] == ["prefetch.patient.gender"]


def test_a_replayed_token_is_refused_at_another_worker_whatever_its_body(
    kb: Knowledge, keys: EhrKeys
) -> None:
    """A hook call claims its jti in the same statement that looks up its hookInstance,
    after the body is checked; a malformed body still claims it, so a replay is always
    401 (two apps on one store stand for two workers: no shared memory between them)."""
    store = InMemoryFeedbackStore()
    one, _ = make_app(kb, keys=keys, store=store)
    two, _ = make_app(kb, keys=keys, store=store)
    path = "/cds-services/patient-view"
    good = hook_request("patient-view", "p1", minimal_prefetch())
    headers = auth(keys, path, jti="used-once")
    assert one.post(path, json=good, headers=headers).status_code == 200
    for body in (good, {**good, "context": {}}, {"not": "a hook call"}):
        r = two.post(path, json=body, headers=headers)
        assert r.status_code == 401 and "replay" in r.json()["detail"], r.text
    malformed = auth(keys, path, jti="malformed-first")
    assert one.post(path, json={**good, "context": {}}, headers=malformed).status_code == 400
    r = two.post(path, json=good, headers=malformed)
    assert r.status_code == 401 and "replay" in r.json()["detail"]
    bad_json = auth(keys, path, jti="not-json-first")
    headers = {**bad_json, "content-type": "application/json"}
    assert one.post(path, content=b"{", headers=headers).status_code == 400
    assert two.post(path, json=good, headers=bad_json).status_code == 401


def test_an_audience_list_naming_this_endpoint_is_accepted(kb: Knowledge, keys: EhrKeys) -> None:
    """RFC 7519: ``aud`` may be a list; one entry must be this endpoint's URL."""
    import jwt

    client, _ = make_app(kb, keys=keys)
    path = "/cds-services/patient-view"
    claims = {
        "iss": keys.issuer,
        "aud": ["https://other.example", BASE + path],
        "exp": NOW.timestamp() + 300,
        "iat": NOW.timestamp(),
        "jti": "aud-list",
    }
    token = jwt.encode(claims, keys.rsa, algorithm="RS384", headers={"kid": "rsa-1"})
    body = hook_request("patient-view", "p1", minimal_prefetch())
    r = client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text


def test_nothing_is_fetched_for_a_replay_or_a_repeat(kb: Knowledge, keys: EhrKeys) -> None:
    """The jti claim and hookInstance lookup run while the call is evaluated, but before
    anything is fetched from the FHIR server: a token replayed at another worker fetches
    nothing (401), and the same hookInstance again answers its stored cards unfetched."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json=bundle(kind="searchset"))

    store = InMemoryFeedbackStore()
    allow = {"cds_fhir_server_allowlist": "https://ehr.example.org/fhir/"}
    one, _ = make_app(kb, keys=keys, handler=handler, store=store, **allow)
    two, _ = make_app(kb, keys=keys, handler=handler, store=store, **allow)
    path = "/cds-services/patient-view"
    body = hook_request(
        "patient-view", "p1", {"patient": patient()}, fhir_server="https://ehr.example.org/fhir/"
    )
    headers = auth(keys, path, jti="fetches")
    first = one.post(path, json=body, headers=headers)
    assert first.status_code == 200, first.text
    fetched = len(seen)
    assert fetched > 0  # conditions, medications ... were not prefetched
    replay = two.post(path, json=body, headers=headers)
    assert replay.status_code == 401 and "replay" in replay.json()["detail"]
    again = one.post(path, json=body, headers=auth(keys, path))
    assert again.status_code == 200 and again.content == first.content
    assert len(seen) == fetched
