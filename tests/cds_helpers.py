"""Builders for FHIR R4 records, CDS Hooks requests and signed EHR JWTs used by the tests."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .conftest import SHARED

BUNDLES = SHARED / "data" / "synthea-bundles"
BULK = SHARED / "data" / "synthea-bulk-10"
NOW = datetime(2020, 1, 1, 12, 0, tzinfo=UTC)  # after the Synthea records were generated
CPT = "http://www.ama-assn.org/go/cpt"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"


def bundle(*resources: dict[str, Any], kind: str = "collection") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": [{"resource": r} for r in resources]}


def patient(
    pid: str = "p1", *, gender: str = "female", birth: str = "1970-05-01"
) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "gender": gender, "birthDate": birth}


def condition(
    code: str,
    system: str = ICD10,
    *,
    status: str | None = "active",
    onset: str | None = "2019-06-01",
    pid: str = "p1",
    rid: str | None = None,
) -> dict[str, Any]:
    r: dict[str, Any] = {
        "resourceType": "Condition",
        "id": rid or f"c-{code}-{status}",
        "code": {"coding": [{"system": system, "code": code, "display": code}]},
        "subject": {"reference": f"Patient/{pid}"},
    }
    if status:
        r["clinicalStatus"] = {"coding": [{"code": status}]}
    if onset:
        r["onsetDateTime"] = onset
    return r


def med_request(
    code: str | None,
    display: str,
    *,
    status: str = "active",
    pid: str = "p1",
    rid: str | None = None,
    kind: str = "MedicationRequest",
) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": display}
    if code:
        concept["coding"] = [{"system": RXNORM, "code": code, "display": display}]
    r: dict[str, Any] = {
        "resourceType": kind,
        "id": rid or f"m-{code or display}-{status}",
        "status": status,
        "medicationCodeableConcept": concept,
        "subject": {"reference": f"Patient/{pid}"},
    }
    if kind == "MedicationRequest":
        r["intent"] = "order"
    return r


def allergy(
    code: str, system: str, display: str, *, status: str = "active", pid: str = "p1"
) -> dict[str, Any]:
    return {
        "resourceType": "AllergyIntolerance",
        "id": f"a-{code}-{status}",
        "clinicalStatus": {"coding": [{"code": status}]},
        "code": {"coding": [{"system": system, "code": code, "display": display}]},
        "patient": {"reference": f"Patient/{pid}"},
    }


def observation(
    code: str, value: float, unit: str, when: str, *, pid: str = "p1", status: str = "final"
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"o-{code}-{when}",
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "code": unit},
    }


def tpi_service_request(rid: str = "tpi-1", cpt: str = "20552", pid: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": CPT, "code": cpt}], "text": "Trigger point injection"},
        "subject": {"reference": f"Patient/{pid}"},
    }


def anesthetic_order(
    text: str = "Lidocaine 1% injection", ml: float | None = 5, rid: str = "la-1", pid: str = "p1"
) -> dict[str, Any]:
    r: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"text": text},
        "subject": {"reference": f"Patient/{pid}"},
    }
    if ml is not None:
        r["dosageInstruction"] = [
            {"doseAndRate": [{"doseQuantity": {"value": ml, "unit": "mL", "code": "mL"}}]}
        ]
    return r


# --------------------------------------------------------------------------- Synthea
def synthea_files() -> list[Path]:
    return sorted(BUNDLES.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    return data


def order_statuses(b: dict[str, Any], codes: set[str]) -> set[str]:
    """Statuses of the MedicationRequests of a bundle coded with one of the RxNorm codes."""
    out = set()
    for e in b["entry"]:
        r = e["resource"]
        if r["resourceType"] != "MedicationRequest":
            continue
        for c in r.get("medicationCodeableConcept", {}).get("coding", []):
            if c.get("code") in codes:
                out.add(r["status"])
    return out


def as_prefetch(b: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A patient bundle split into TriggerPath's prefetch keys (what an EHR would send)."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    pat: dict[str, Any] | None = None
    for e in b["entry"]:
        r = e["resource"]
        if r["resourceType"] == "Patient":
            pat = r
        by_type.setdefault(r["resourceType"], []).append(r)
    assert pat is not None

    def searchset(kind: str, keep: Any = None) -> dict[str, Any] | None:
        items = [r for r in by_type.get(kind, []) if keep is None or keep(r)]
        if not items:
            return None
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r} for r in items],
        }

    def obs(code: str) -> Any:
        return lambda r: any(c.get("code") == code for c in r["code"].get("coding", []))

    prefetch = {
        "patient": pat,
        "conditions": searchset("Condition"),
        "medicationRequests": searchset(
            "MedicationRequest", lambda r: r["status"] in ("active", "on-hold")
        ),
        "allergies": searchset("AllergyIntolerance"),
        "weight": searchset("Observation", obs("29463-7")),
        "pain": searchset("Observation", obs("72514-3")),
        "tpiProcedures": None,
    }
    return pat["id"], prefetch


# --------------------------------------------------------------------------- CDS Hooks
def hook_request(
    hook: str,
    patient_id: str,
    prefetch: dict[str, Any] | None = None,
    *,
    draft_orders: dict[str, Any] | None = None,
    selections: list[str] | None = None,
    fhir_server: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/example", "patientId": patient_id}
    if draft_orders is not None:
        context["draftOrders"] = draft_orders
    if selections is not None:
        context["selections"] = selections
    body: dict[str, Any] = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context}
    if prefetch is not None:
        body["prefetch"] = prefetch
    if fhir_server:
        body["fhirServer"] = fhir_server
        body["fhirAuthorization"] = {
            "access_token": token or "some-opaque-fhir-access-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "triggerpath",
        }
    return body


class EhrKeys:
    """An EHR's signing keys (ES384 and RS384) and its public JWKS, generated locally."""

    def __init__(self, issuer: str = "https://ehr.example.org") -> None:
        self.issuer = issuer
        self.ec = ec.generate_private_key(ec.SECP384R1())
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key()))
        rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key()))
        ec_jwk.update({"kid": "ec-1", "alg": "ES384", "use": "sig"})
        rsa_jwk.update({"kid": "rsa-1", "alg": "RS384", "use": "sig"})
        return {"keys": [ec_jwk, rsa_jwk]}

    def token(
        self,
        aud: str,
        *,
        alg: str = "ES384",
        now: datetime = NOW,
        lifetime: int = 300,
        jti: str | None = None,
        issuer: str | None = None,
        header: dict[str, Any] | None = None,
    ) -> str:
        key: Any = self.ec if alg.startswith("ES") else self.rsa
        kid = "ec-1" if alg.startswith("ES") else "rsa-1"
        iat = int(now.timestamp())
        claims = {
            "iss": issuer or self.issuer,
            "sub": "ehr-client",
            "aud": aud,
            "iat": iat,
            "exp": iat + lifetime,
            "jti": jti or str(uuid.uuid4()),
        }
        headers = {"kid": kid, "typ": "JWT", **(header or {})}
        return jwt.encode(claims, key, algorithm=alg, headers=headers)
