"""FHIR R4 out: every resource TriggerPath writes validates against the official schema."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from triggerpath.adapters.fhir_r4 import read_bundle
from triggerpath.adapters.fhir_r4.write import (
    InjectionSite,
    TpiSession,
    anesthetic_administration,
    care_plan,
    knowledge_uri,
    pain_observation,
    recommendation_resources,
    referral_request,
    tpi_procedure,
    transaction_bundle,
    weight_observation,
)
from triggerpath.domain.engine import assess
from triggerpath.domain.recommendation import Recommendation
from triggerpath.domain.validation import parse_assessment
from triggerpath.errors import InvalidInput
from triggerpath.knowledge import Knowledge

from .cds_helpers import NOW, bundle, patient
from .conftest import EXAMPLES
from .fhir_schema import assert_valid, schema_errors

EXAMPLE_NAMES = sorted(p.stem for p in EXAMPLES.glob("*.json") if p.stem != "expected")


def recommendation(name: str, kb: Knowledge) -> Recommendation:
    data = json.loads((EXAMPLES / f"{name}.json").read_text())
    return assess(parse_assessment(data, kb), kb, as_of=NOW.date())


def session(**changes: Any) -> TpiSession:
    base: dict[str, Any] = {
        "patient_id": "p1",
        "performed_at": NOW,
        "sites": [InjectionSite("quadratus_lumborum", "right")],
        "agent": "lidocaine",
        "percent": Decimal("1"),
        "total_ml": Decimal("5"),
    }
    base.update(changes)
    return TpiSession(**base)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_recommendation_and_care_plan_validate(name: str, kb: Knowledge) -> None:
    rec = recommendation(name, kb)
    group, response = recommendation_resources(
        rec,
        kb,
        patient_id="p1",
        now=NOW,
        request_id="urn:uuid:d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
    )
    plan = care_plan(rec, kb, patient_id="p1", now=NOW)
    for resource in (group, response, plan):
        assert_valid(resource)
    assert response["result"] == {"reference": f"RequestGroup/{group['id']}"}
    assert response["moduleUri"] == knowledge_uri(kb) and kb.version in response["moduleUri"]
    assert response["reasonCode"][0]["coding"][0]["code"] == rec.verdict
    # every reason is written with its statement ids
    for r in rec.reasons:
        assert all(sid in response["note"][0]["text"] for sid in r.statement_ids)
    cited = {d["label"] for a in group.get("action", []) for d in a.get("documentation", [])}
    for c in rec.cautions:
        assert set(c.statement_ids) <= cited
    assert_valid(transaction_bundle([group, response, plan]))


def test_redirect_becomes_the_proposed_action(kb: Knowledge) -> None:
    rec = recommendation("sciatica_below_knee", kb)
    group, _ = recommendation_resources(rec, kb, patient_id="p1", now=NOW)
    first = group["action"][0]
    assert first["code"][0]["coding"][0]["code"] == "epidural_steroid_injection"
    assert "S000.22" in {d["label"] for d in first["documentation"]}


def test_session_records_validate(kb: Knowledge) -> None:
    s = session(sites=[InjectionSite("quadratus_lumborum", "right")])
    written = [
        tpi_procedure(s, kb),
        anesthetic_administration(s, kb),
        pain_observation("p1", 6, NOW, kb, part_of="Procedure/x"),
        weight_observation("p1", Decimal("81.5"), NOW, kb),
        referral_request(
            kb, "physical_therapy", patient_id="p1", now=NOW, reason="x", statement_ids=["S000.25"]
        ),
        referral_request(
            kb,
            "epidural_steroid_injection",
            patient_id="p1",
            now=NOW,
            reason="radicular pain",
            statement_ids=["S000.22"],
        ),
    ]
    for resource in written:
        assert_valid(resource)
    tx = transaction_bundle(written)
    assert_valid(tx)
    admin = next(
        e["resource"]
        for e in tx["entry"]
        if e["resource"]["resourceType"] == "MedicationAdministration"
    )
    proc_url = next(
        e["fullUrl"] for e in tx["entry"] if e["resource"]["resourceType"] == "Procedure"
    )
    assert admin["partOf"] == [{"reference": proc_url}]  # references rewritten to urn:uuid


def test_the_schema_check_catches_errors() -> None:
    """The validator is not a rubber stamp: a wrong element or type fails."""
    good = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    assert schema_errors(good) == []
    assert schema_errors({**good, "status": "done"})  # not an ObservationStatus code
    assert schema_errors({**good, "valueQuantity": {"value": "six"}})
    assert schema_errors({**good, "painScore": 6})  # no such element in R4


@pytest.mark.parametrize(
    ("sites", "cpt"),
    [
        # CPT 2025: 20552 = 1 or 2 muscles, 20553 = 3 or more muscles
        ([("quadratus_lumborum", "right")], "20552"),
        ([("quadratus_lumborum", "bilateral")], "20552"),
        ([("quadratus_lumborum", "bilateral"), ("gluteus_medius", "left")], "20553"),
        (
            [("upper_trapezius", "left"), ("rhomboid_major", "left"), ("levator_scapulae", "left")],
            "20553",
        ),
    ],
)
def test_cpt_code_follows_the_number_of_muscles(
    kb: Knowledge, sites: list[tuple[str, str]], cpt: str
) -> None:
    proc = tpi_procedure(session(sites=[InjectionSite(m, s) for m, s in sites]), kb)  # type: ignore[arg-type]
    assert proc["code"]["coding"][0]["code"] == cpt
    assert proc["code"]["coding"][0]["system"] == "http://www.ama-assn.org/go/cpt"


def test_anesthetic_dose_in_mg(kb: Knowledge) -> None:
    # 1% = 10 mg/mL (percent w/v): 5 mL of 1% lidocaine = 50 mg; 4 mL of 0.5% = 20 mg (S000.15)
    assert anesthetic_administration(session(), kb)["dosage"]["dose"]["value"] == 50
    half = session(percent=Decimal("0.5"), total_ml=Decimal("4"))
    admin = anesthetic_administration(half, kb)
    assert admin["dosage"]["dose"] == {
        "value": 20.0,
        "unit": "mg",
        "system": "http://unitsofmeasure.org",
        "code": "mg",
    }
    assert admin["medicationCodeableConcept"]["coding"][0]["code"] == "6387"  # RxNorm lidocaine
    assert admin["dosage"]["route"]["coding"][0]["code"] == "78421000"  # intramuscular


def test_ids_are_deterministic_and_inputs_checked(kb: Knowledge) -> None:
    assert tpi_procedure(session(), kb)["id"] == tpi_procedure(session(), kb)["id"]
    other = session(performed_at=NOW + timedelta(minutes=1))
    assert tpi_procedure(other, kb)["id"] != tpi_procedure(session(), kb)["id"]
    with pytest.raises(InvalidInput) as info:
        tpi_procedure(session(sites=[InjectionSite("biceps", "left")], agent="cocaine"), kb)
    assert {p.field for p in info.value.problems} == {"sites[0].muscle", "agent"}
    with pytest.raises(InvalidInput, match="dry needling"):
        anesthetic_administration(session(agent=None, percent=None, total_ml=None), kb)
    with pytest.raises(InvalidInput):
        pain_observation("p1", 11, NOW, kb)
    with pytest.raises(InvalidInput, match="timezone"):
        pain_observation("p1", 5, NOW.replace(tzinfo=None), kb)
    with pytest.raises(InvalidInput, match="Patient id"):
        pain_observation("Patient/p1", 5, NOW, kb)


def test_what_we_write_we_read_back(kb: Knowledge) -> None:
    """Round trip: a session written as FHIR is read as an earlier TPI, a dose and a score."""
    s = session(performed_at=NOW - timedelta(hours=2))
    written = [
        tpi_procedure(s, kb),
        anesthetic_administration(s, kb),
        pain_observation("p1", 3, NOW - timedelta(hours=1), kb),
        weight_observation("p1", Decimal("72"), NOW - timedelta(days=2), kb),
    ]
    snap = read_bundle(bundle(patient(), *copy.deepcopy(written)), kb, now=NOW)
    assert [t.code for t in snap.tpis or []] == ["cpt 20552"]
    assert snap.administrations_24h[0].dose_value == 50
    assert snap.recent_pain is not None and snap.recent_pain.value == 3
    assert snap.weight is not None and snap.weight.value == Decimal("72.0")
