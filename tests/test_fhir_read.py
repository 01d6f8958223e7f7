"""FHIR R4 in: a record becomes a snapshot and a partial assessment, never a guess."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from triggerpath.adapters.fhir_r4 import (
    bulk_patient_ids,
    read_bulk_ndjson,
    read_bundle,
    snapshot_from_resources,
)
from triggerpath.adapters.fhir_r4.read import PatientSnapshot
from triggerpath.domain.engine import assess
from triggerpath.domain.policy import Policy
from triggerpath.domain.validation import parse_assessment
from triggerpath.errors import InvalidInput
from triggerpath.knowledge import Knowledge
from triggerpath.knowledge.schema import Region

from .cds_helpers import (
    BULK,
    CPT,
    ICD10,
    LOINC,
    NOW,
    RXNORM,
    SNOMED,
    allergy,
    bundle,
    condition,
    load,
    med_request,
    observation,
    order_statuses,
    patient,
    synthea_files,
)


def read(
    kb: Knowledge, *resources: dict[str, Any], policy: Policy | None = None
) -> PatientSnapshot:
    b = bundle(patient(), *resources)
    return read_bundle(b, kb, now=NOW, policy=policy or Policy())


def missing(snap: PatientSnapshot) -> set[str]:
    return {m.field for m in snap.missing}


def test_only_active_orders_count(kb: Knowledge) -> None:
    snap = read(
        kb,
        med_request("855332", "Warfarin Sodium 5 MG Oral Tablet", status="stopped"),
        med_request("309362", "Clopidogrel 75 MG Oral Tablet", status="on-hold"),
        med_request(None, "apixaban 5 mg tablet", status="completed"),
        med_request("243670", "Aspirin 81 MG Oral Tablet", status="entered-in-error"),
        med_request(None, "Rivaroxaban 20 MG", status="cancelled"),
    )
    active = {m.drug_class for m in snap.active_medications}
    assert active == {"antiplatelet"}  # on-hold counts; stopped/completed/cancelled do not
    assert {m.name for m in snap.medications or []} >= {"Warfarin Sodium 5 MG Oral Tablet"}
    assert all(m.name != "Aspirin 81 MG Oral Tablet" for m in snap.medications or [])
    data = snap.assessment_input(screen_all_regions=True)
    warfarin = next(m for m in data["medications"] if m["name"].startswith("Warfarin"))
    assert warfarin == {
        "name": "Warfarin Sodium 5 MG Oral Tablet",
        "drug_class": "anticoagulant",
        "active": False,
    }
    rec = assess(parse_assessment(data, kb), kb, as_of=snap.as_of)
    assert {c.code for c in rec.cautions} & {"anticoagulant", "antiplatelet"} == {"antiplatelet"}


def test_uncoded_and_referenced_medications(kb: Knowledge) -> None:
    by_ref = {
        "resourceType": "MedicationRequest",
        "id": "mr-ref",
        "status": "active",
        "intent": "order",
        "medicationReference": {"reference": "Medication/med-1"},
        "subject": {"reference": "Patient/p1"},
    }
    med = {
        "resourceType": "Medication",
        "id": "med-1",
        "code": {"coding": [{"system": RXNORM, "code": "1364430", "display": "apixaban"}]},
    }
    dangling = {**by_ref, "id": "mr-dangling", "medicationReference": {"reference": "Medication/x"}}
    statement = med_request(None, "Eliquis 5 mg", kind="MedicationStatement")
    snap = read(kb, by_ref, med, dangling, statement)
    classes = [(m.reference, m.drug_class, m.matched_by) for m in snap.active_medications]
    assert ("MedicationRequest/mr-ref", "anticoagulant", "code") in classes
    assert any(c[1] == "anticoagulant" and c[2] == "name" for c in classes)  # Eliquis by name
    assert "medications (MedicationRequest/mr-dangling)" in missing(snap)


def test_conditions_map_to_findings_regions_and_causes(kb: Knowledge) -> None:
    snap = read(
        kb,
        condition("M54.50", onset="2019-06-01"),  # low back pain since June 2019
        condition("S13.4XXA", rid="whiplash"),
        condition("M54.16", status="resolved", rid="old-radic"),  # resolved: not counted
        condition("M51.26", rid="herniation"),
        condition("O26.891", status="active", rid="preg"),
        condition("M48.06", status="active", rid="refuted")
        | {"verificationStatus": {"coding": [{"code": "refuted"}]}},
    )
    assert snap.regions == ["low_back", "neck"]
    assert snap.causes == ["acute_trauma"]
    assert snap.pregnant is True
    assert set(snap.findings) == {"pain_generators.structural.disc_herniation", "patient.pregnant"}
    data = snap.assessment_input()
    assert data["pain_generators"] == {"structural": {"disc_herniation": True}}
    assert "red_flags" not in data and "trigger_points" not in data  # unknown, never guessed
    # onset 2019-06-01 to 2020-01-01 = 214 days = 30.6 weeks
    assert data["pain"]["duration_weeks"] == 30.6
    rec = assess(parse_assessment(data, kb), kb, as_of=snap.as_of)
    assert rec.verdict == "not_indicated" and rec.redirect == "structural_treatment"


def test_radiculopathy_codes_redirect_to_epidural_steroid_injection(kb: Knowledge) -> None:
    for code, system in [("M54.16", ICD10), ("M54.41", ICD10), ("23056005", SNOMED)]:
        snap = read(kb, condition(code, system), condition("M54.50", rid="lbp"))
        rec = assess(parse_assessment(snap.assessment_input(), kb), kb, as_of=snap.as_of)
        assert rec.verdict == "not_indicated", code
        assert rec.redirect == "epidural_steroid_injection", code
        assert "S000.22" in rec.reasons[0].statement_ids  # TPIs are not for radicular pain


def test_allergies(kb: Knowledge) -> None:
    snap = read(
        kb,
        allergy("6387", RXNORM, "lidocaine"),
        allergy("300916003", SNOMED, "Latex allergy", status="inactive"),
    )
    assert [e.valueset for e in snap.allergies or []] == ["local_anesthetic_allergy"]
    data = snap.assessment_input(screen_all_regions=True)
    assert data["contraindications"] == {"injectate_allergy": True}
    rec = assess(parse_assessment(data, kb), kb, as_of=snap.as_of)
    assert "contraindication.injectate_allergy" in {r.code for r in [*rec.reasons, *rec.findings]}


def test_weight_units_recency_and_missing(kb: Knowledge) -> None:
    recent = (NOW - timedelta(days=10)).isoformat()
    old = (NOW - timedelta(days=900)).isoformat()
    snap = read(kb, observation("29463-7", 176.4, "[lb_av]", recent))
    assert snap.weight is not None and snap.weight.value == Decimal("80.0")  # 176.4 lb = 80.0 kg
    stale = read(kb, observation("29463-7", 80, "kg", old))
    assert stale.weight is None and stale.last_weight is not None
    why = next(m.why for m in stale.missing if m.field == "patient.weight_kg")
    assert "older than 365 days" in why
    longer = read(
        kb, observation("29463-7", 80, "kg", old), policy=Policy(ehr_max_weight_age_days=1000)
    )
    assert longer.weight is not None
    none = read(kb)
    assert {"patient.weight_kg", "patient.pregnant", "regions", "trigger_points"} <= missing(none)


def test_pain_score_and_pregnancy_status(kb: Knowledge) -> None:
    day = (NOW - timedelta(days=3)).isoformat()
    pregnant = {
        "resourceType": "Observation",
        "id": "preg",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "82810-3"}]},
        "effectiveDateTime": (NOW - timedelta(days=200)).isoformat(),
        "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "77386006"}]},
    }
    not_pregnant = {
        **pregnant,
        "id": "notpreg",
        "effectiveDateTime": day,
        "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "60001007"}]},
    }
    snap = read(kb, observation("72514-3", 7, "{score}", day), not_pregnant)
    assert snap.recent_pain is not None and snap.recent_pain.value == 7
    assert snap.pregnant is False  # a negative status 3 days old counts (policy: 7 days)
    stale = read(kb, {**not_pregnant, "effectiveDateTime": (NOW - timedelta(days=30)).isoformat()})
    assert stale.pregnant is None  # too old to rule pregnancy out
    assert read(kb, pregnant).pregnant is True  # a positive status always counts
    cancelled = read(kb, observation("72514-3", 7, "{score}", day, status="cancelled"))
    assert cancelled.last_pain is None


def test_earlier_tpis_and_anesthetic_in_the_last_24_hours(kb: Knowledge) -> None:
    tpi = {
        "resourceType": "Procedure",
        "id": "tpi-old",
        "status": "completed",
        "code": {"coding": [{"system": CPT, "code": "20553"}]},
        "performedDateTime": "2019-12-01T10:00:00+00:00",
    }
    given = {
        "resourceType": "MedicationAdministration",
        "id": "ma-1",
        "status": "completed",
        "medicationCodeableConcept": {"text": "Bupivacaine 0.25%"},
        "effectiveDateTime": (NOW - timedelta(hours=5)).isoformat(),
        "dosage": {"dose": {"value": 50, "unit": "mg", "code": "mg"}},
    }
    yesterday = {
        **given,
        "id": "ma-2",
        "effectiveDateTime": (NOW - timedelta(hours=30)).isoformat(),
    }
    snap = read(kb, tpi, {**tpi, "id": "tpi-planned", "status": "preparation"}, given, yesterday)
    assert [t.reference for t in snap.tpis or []] == ["Procedure/tpi-old"]
    assert [a.reference for a in snap.administrations_24h] == ["MedicationAdministration/ma-1"]
    assert snap.relevant  # a TPI history makes the chart relevant


def test_other_patients_and_bad_input(kb: Knowledge) -> None:
    other = med_request("855332", "Warfarin Sodium 5 MG Oral Tablet", pid="p2", rid="other")
    snap = snapshot_from_resources([patient(), patient("p2"), other], kb, now=NOW, patient_id="p1")
    assert snap.active_medications == []
    with pytest.raises(InvalidInput, match="2 patients"):
        snapshot_from_resources([patient(), patient("p2")], kb, now=NOW)
    with pytest.raises(InvalidInput) as info:
        read_bundle({"resourceType": "Patient"}, kb, now=NOW)
    assert info.value.problems[0].field == "bundle"
    with pytest.raises(InvalidInput, match="not valid JSON"):
        read_bundle(b"{", kb, now=NOW)
    with pytest.raises(InvalidInput, match="timezone"):
        snapshot_from_resources([patient()], kb, now=NOW.replace(tzinfo=None))
    no_birth = snapshot_from_resources([{"resourceType": "Patient", "id": "p1"}], kb, now=NOW)
    with pytest.raises(InvalidInput) as info:
        no_birth.assessment_input()
    assert {p.field for p in info.value.problems} == {"patient.age_years", "regions"}


# --------------------------------------------------------------------------- real data
@pytest.mark.shared_data
def test_synthea_bundles_active_orders_only(kb: Knowledge) -> None:
    """Active warfarin (855332) or clopidogrel (309362) orders, and only those, are found."""
    checked = {"active": 0, "stopped_only": 0}
    for path in synthea_files():
        b = load(path)
        snap = read_bundle(b, kb, now=NOW)
        warfarin = order_statuses(b, {"855332"})
        clopidogrel = order_statuses(b, {"309362"})
        classes = {m.drug_class for m in snap.active_medications}
        assert ("anticoagulant" in classes) == ("active" in warfarin), path.name
        assert ("antiplatelet" in classes) == ("active" in clopidogrel), path.name
        if "active" in warfarin | clopidogrel:
            checked["active"] += 1
        elif warfarin | clopidogrel:
            checked["stopped_only"] += 1
        assert snap.age_years is not None
        assert "trigger_points" in {m.field for m in snap.missing}
    assert checked["active"] >= 40 and checked["stopped_only"] >= 10


@pytest.mark.shared_data
def test_synthea_assessments_parse_and_run(kb: Knowledge) -> None:
    relevant = 0
    for path in synthea_files():
        snap = read_bundle(path.read_bytes(), kb, now=NOW)
        if not snap.relevant:
            continue
        relevant += 1
        rec = assess(
            parse_assessment(snap.assessment_input(screen_all_regions=True), kb),
            kb,
            as_of=snap.as_of,
        )
        assert rec.verdict != "tpi_appropriate"  # the EHR never shows the examination
    assert relevant >= 25


@pytest.mark.shared_data
def test_bulk_ndjson_export(kb: Knowledge) -> None:
    ids = bulk_patient_ids(BULK)
    assert len(ids) == 13
    regions: dict[str, list[Region]] = {}
    latex = []
    for pid in ids:
        snap = read_bulk_ndjson(BULK, pid, kb, now=NOW)
        regions[pid] = snap.regions
        if snap.findings.get("contraindications.latex_allergy"):
            latex.append(pid)
        # the export has no Observation file: the weight was not available, not absent
        weight = next(m.why for m in snap.missing if m.field == "patient.weight_kg")
        assert weight == "observations were not available"
    assert any("low_back" in r for r in regions.values())  # chronic low back pain 278860009
    assert any("neck" in r for r in regions.values())  # chronic neck pain 1121000119107
    assert len(latex) == 1
    with pytest.raises(InvalidInput, match="no Patient"):
        read_bulk_ndjson(BULK, "nobody", kb, now=NOW)
