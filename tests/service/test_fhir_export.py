"""The episode exported for the EHR as a FHIR R4 Bundle (issue 17 §5), on both backends.

Schema-valid against the official FHIR R4 JSON schema (tests/fhir_schema.py) and parsed by
``fhir.resources``; every PDF inside names the patient (name, date of birth, MRN) and is on
the clinic policy's paper (Letter by default: 612 x 792 pt).
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
from pathlib import Path
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from ..fhir_schema import assert_valid
from .conftest import Service


def _episode_with_a_session(service: Service) -> tuple[dict[str, Any], str]:
    p = service.patient(family_name="Exportova", given_name="Ida", birth_date="1969-08-30")
    e = service.episode(p["id"])
    service.assessment(e["id"])
    s = service.session(e["id"])
    body = {
        "measured_on": "2026-11-28",
        "instrument": "nrs",
        "value": 3,
        "session_id": s["id"],
        "relation": "after",
    }
    service.ok(service.post(f"/api/v1/episodes/{e['id']}/outcomes", json=body))
    return p, e["id"]


def _pdf_text(pdf: bytes, tmp_path: Path, name: str) -> tuple[str, str]:
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    return " ".join(text.split()), info


def test_episode_bundle_is_valid_fhir_r4_with_the_pdfs(service: Service, tmp_path: Path) -> None:
    p, episode_id = _episode_with_a_session(service)
    r = service.get(f"/api/v1/episodes/{episode_id}/fhir-bundle", role="viewer")
    assert r.status_code == 200, r.text[:500]
    assert r.headers["content-type"].startswith("application/fhir+json")
    bundle = r.json()
    Bundle.model_validate(bundle)  # fhir.resources R4B (same elements as R4 4.0.1)
    assert_valid(bundle)  # the official FHIR R4 JSON schema
    assert bundle["type"] == "transaction"
    by_type: dict[str, list[dict[str, Any]]] = {}
    for entry in bundle["entry"]:
        assert_valid(entry["resource"])
        by_type.setdefault(entry["resource"]["resourceType"], []).append(entry)
    assert {"Patient", "Procedure", "Observation", "CarePlan", "DocumentReference"} <= set(by_type)
    patient = by_type["Patient"][0]
    assert patient["request"]["ifNoneExist"].endswith(f"|{p['data']['mrn']}")
    res = patient["resource"]
    assert res["name"][0] == {"use": "official", "family": "Exportova", "given": ["Ida"]}
    assert res["birthDate"] == "1969-08-30" and res["gender"] == "male"
    assert res["identifier"][0]["value"] == p["data"]["mrn"]
    procedure = by_type["Procedure"][0]["resource"]
    assert procedure["code"]["coding"][0]["code"] == "20552"  # 1 muscle (AMA CPT 2025)
    assert procedure["subject"]["reference"] == patient["fullUrl"]
    pain = by_type["Observation"][0]["resource"]
    assert pain["valueQuantity"]["value"] == 3 and pain["effectiveDateTime"] == "2026-11-28"
    assert pain["partOf"][0]["reference"] == by_type["Procedure"][0]["fullUrl"]
    kinds = {d["resource"]["type"]["coding"][0]["code"] for d in by_type["DocumentReference"]}
    assert kinds == {"28570-0", "34133-9"}  # LOINC procedure note, summary of episode note
    for i, d in enumerate(by_type["DocumentReference"]):
        att = d["resource"]["content"][0]["attachment"]
        pdf = base64.b64decode(att["data"])
        assert pdf[:5] == b"%PDF-" and att["size"] == len(pdf)
        assert att["hash"] == base64.b64encode(hashlib.sha1(pdf).digest()).decode()
        text, info = _pdf_text(pdf, tmp_path, f"doc{i}")
        assert "EXPORTOVA, Ida" in text and "1969-08-30" in text, text[:300]
        assert p["data"]["mrn"] in text
        assert "612 x 792 pts" in info  # Letter, the default paper


def test_export_is_a_read_audited_and_refused_to_admins(service: Service) -> None:
    _, episode_id = _episode_with_a_session(service)
    mark = service.watermark()
    assert (
        service.get(f"/api/v1/episodes/{episode_id}/fhir-bundle", role="admin").status_code == 403
    )
    r = service.get(f"/api/v1/episodes/{episode_id}/fhir-bundle", role="nurse")
    assert r.status_code == 200
    events = [e for e in service.events_after(mark) if e.action == "episode.export"]
    assert [e.outcome for e in events] == ["denied", "success"]
    missing = "/api/v1/episodes/00000000-0000-4000-8000-000000000000/fhir-bundle"
    assert service.get(missing).status_code == 404


def test_web_letters_close_with_summary_and_fhir_download(service: Service) -> None:
    """The web app: a referral letter per redirect, closing an episode keeps its summary
    PDF with the record, and the FHIR link serves the Bundle."""
    from .test_patient_identity import _Browser

    web = _Browser(service)
    p = service.patient(family_name="Letterly", given_name="Rob", birth_date="1958-01-20")
    e = service.episode(p["id"])
    a = service.assessment(e["id"], "sciatica_below_knee")
    page = web.get(f"/app/assessments/{a['id']}")
    assert page.status_code == 200
    link = f"/app/assessments/{a['id']}/letters/epidural_steroid_injection"
    assert link in page.text
    pdf = web.get(link, params={"format": "pdf"})
    assert pdf.status_code == 200 and pdf.content[:5] == b"%PDF-"
    assert web.get(f"/app/assessments/{a['id']}/letters/medial_branch_block").status_code == 422
    kept = web.post(f"{link}/keep", {}, follow_redirects=False)
    assert kept.status_code == 303
    closed = web.post(
        f"/app/episodes/{e['id']}/close", {"closed_on": "2026-11-30"}, follow_redirects=False
    )
    assert closed.status_code == 303, closed.text[:300]
    episode = service.get(f"/api/v1/episodes/{e['id']}").json()
    assert episode["data"]["status"] == "closed" and episode["data"]["closed_on"] == "2026-11-30"
    docs = service.get(f"/api/v1/patients/{p['id']}/documents").json()["items"]
    assert sorted(d["data"]["kind"] for d in docs) == ["episode_summary", "referral_letter"]
    bundle = web.get(f"/app/episodes/{e['id']}/fhir")
    assert bundle.status_code == 200 and "attachment" in bundle.headers["content-disposition"]
    refs = [
        x["resource"]
        for x in bundle.json()["entry"]
        if x["resource"]["resourceType"] == "DocumentReference"
    ]
    codes = sorted(r["type"]["coding"][0]["code"] for r in refs)
    assert codes == ["34133-9", "57133-1"]  # summary (final: closed), the kept letter
    assert all(r["docStatus"] == "final" for r in refs)
