"""CDS Hooks cards (pure service): right cards, explained, tied to the draft order."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triggerpath.adapters.cds_fhir import FHIR_R4
from triggerpath.adapters.fhir_r4 import read_bundle
from triggerpath.adapters.fhir_r4.read import PatientSnapshot
from triggerpath.knowledge import Knowledge
from triggerpath.services.cds import (
    ORDERS_KEY,
    TRACE_KEY,
    Card,
    CdsOptions,
    Evaluation,
    order_hook,
    patient_view,
    source_unavailable,
    tpi_orders,
)

from .cds_helpers import (
    CPT,
    ICD10,
    NOW,
    allergy,
    anesthetic_order,
    bundle,
    condition,
    load,
    med_request,
    observation,
    order_statuses,
    patient,
    synthea_files,
    tpi_service_request,
)
from .fhir_schema import assert_valid

OPTIONS = CdsOptions(web_base_url="https://tp.example.org")
RECENT = (NOW - timedelta(days=20)).isoformat()


def snap_of(
    kb: Knowledge, *resources: dict[str, Any], who: dict[str, Any] | None = None
) -> PatientSnapshot:
    return read_bundle(bundle(who or patient(), *resources), kb, now=NOW)


def sign(kb: Knowledge, snap: PatientSnapshot, *orders: dict[str, Any]) -> Evaluation:
    draft = bundle(*(orders or (tpi_service_request(),)))
    return order_hook(
        "order-sign", snap, draft, kb, hook_instance="hi-1", fhir=FHIR_R4, options=OPTIONS
    )


def by_code(ev: Evaluation) -> dict[str, dict[str, Any]]:
    return {c["source"]["topic"]["code"]: c for c in ev.cards}


def check_card(card: dict[str, Any], kb: Knowledge) -> None:
    """What every card must carry (CDS Hooks 2.0 card attributes + TriggerPath's trace)."""
    assert Card.model_validate(card).model_dump(mode="json", exclude_none=True) == card
    assert 0 < len(card["summary"]) < 140
    assert card["indicator"] in ("info", "warning", "critical")
    assert card["source"]["label"] == "TriggerPath"
    assert card["source"]["topic"]["version"] == kb.version
    assert kb.version in card["detail"]
    trace = card["extension"][TRACE_KEY]
    assert trace["statementIds"] and all(s in kb.statements for s in trace["statementIds"])
    assert all(s in card["detail"] for s in trace["statementIds"])
    assert all(r["display"] for r in card.get("overrideReasons", []))
    if card.get("suggestions"):
        assert card["selectionBehavior"] == "at-most-one"
        for s in card["suggestions"]:
            assert s["uuid"] and s["actions"]
            for a in s["actions"]:
                if a["type"] == "create":
                    assert_valid(a["resource"])
                if a["type"] == "delete":
                    assert a["resourceId"] in card["extension"][ORDERS_KEY]


def test_no_tpi_order_no_cards(kb: Knowledge) -> None:
    snap = snap_of(kb, med_request("855332", "Warfarin Sodium 5 MG Oral Tablet"))
    ev = sign(
        kb, snap, med_request("617993", "Amoxicillin 120 MG/ML Oral Suspension", status="draft")
    )
    assert ev.cards == [] and ev.orders == []


def test_tpi_orders_are_recognised(kb: Knowledge) -> None:
    orders = bundle(
        tpi_service_request("sr-1", "20553"),
        anesthetic_order("Bupivacaine 0.25% injection", rid="la-inj"),
        anesthetic_order("Lidocaine 5% topical patch", rid="la-patch"),
        anesthetic_order("lidocaine 2% viscous oral solution", rid="la-oral"),
        {**tpi_service_request("sr-2"), "status": "revoked"},
        {**tpi_service_request("sr-3"), "code": {"coding": [{"system": CPT, "code": "20550"}]}},
    )
    refs = [o.reference for o in tpi_orders(orders, kb, fhir=FHIR_R4)]
    assert refs == ["ServiceRequest/sr-1", "MedicationRequest/la-inj"]
    chosen = tpi_orders(orders, kb, fhir=FHIR_R4, selections=["MedicationRequest/la-inj"])
    assert [o.reference for o in chosen] == ["MedicationRequest/la-inj"]


def test_order_select_only_looks_at_the_selection(kb: Knowledge) -> None:
    snap = snap_of(kb, med_request("855332", "Warfarin Sodium 5 MG Oral Tablet"))
    draft = bundle(
        tpi_service_request("sr-1"), med_request("617993", "Amoxicillin", status="draft")
    )
    none = order_hook(
        "order-select",
        snap,
        draft,
        kb,
        hook_instance="h",
        fhir=FHIR_R4,
        selections=["MedicationRequest/m-617993-draft"],
    )
    assert none.cards == []
    some = order_hook(
        "order-select",
        snap,
        draft,
        kb,
        hook_instance="h",
        fhir=FHIR_R4,
        selections=["ServiceRequest/sr-1"],
    )
    assert "caution-anticoagulant" in by_code(some)


def test_anticoagulant_card_names_the_drug_and_the_order(kb: Knowledge) -> None:
    snap = snap_of(
        kb, med_request("855332", "Warfarin Sodium 5 MG Oral Tablet"), condition("M54.50")
    )
    ev = sign(kb, snap)
    card = by_code(ev)["caution-anticoagulant"]
    check_card(card, kb)
    assert card["indicator"] == "warning"
    assert "Warfarin" in card["summary"]
    assert card["extension"][ORDERS_KEY] == ["ServiceRequest/tpi-1"]
    assert card["extension"][TRACE_KEY]["evidence"][0]["code"] == "rxnorm 855332"
    assert {"S002.30", "S002.32"} <= set(card["extension"][TRACE_KEY]["statementIds"])
    assert card["links"][0]["url"] == "https://tp.example.org/patients/p1"


def test_contraindications_are_critical_with_a_remove_suggestion(kb: Knowledge) -> None:
    snap = snap_of(
        kb,
        condition("Z33.1", rid="preg"),
        allergy("6387", "http://www.nlm.nih.gov/research/umls/rxnorm", "lidocaine"),
        condition("L03.312", rid="cellulitis"),
        condition("D68.9", rid="coag"),
    )
    cards = by_code(sign(kb, snap))
    for code in ("pregnancy", "injectate_allergy", "infection_at_site", "bleeding_disorder"):
        card = cards[f"contraindication-{code}"]
        check_card(card, kb)
        assert card["indicator"] == "critical"
        action = card["suggestions"][0]["actions"][0]
        assert action == {
            "type": "delete",
            "description": "Remove the draft order ServiceRequest/tpi-1",
            "resourceId": "ServiceRequest/tpi-1",
        }
        assert "S002.16" in card["extension"][TRACE_KEY]["statementIds"]
    assert cards["contraindication-pregnancy"]["extension"][TRACE_KEY]["evidence"][0][
        "reference"
    ] == ("Condition/preg")


def test_radiculopathy_redirects_to_epidural_steroid_injection(kb: Knowledge) -> None:
    snap = snap_of(kb, condition("M54.16"), condition("M54.50", rid="lbp"))
    ev = sign(kb, snap)
    card = by_code(ev)["non-myofascial"]
    check_card(card, kb)
    assert card["indicator"] == "warning"
    assert "epidural steroid injection" in card["summary"].lower()
    best = card["suggestions"][0]
    assert best["isRecommended"] is True
    kinds = [
        (a["type"], a.get("resourceId") or a["resource"]["resourceType"]) for a in best["actions"]
    ]
    assert kinds == [("delete", "ServiceRequest/tpi-1"), ("create", "ServiceRequest")]
    referral = best["actions"][1]["resource"]
    assert referral["code"]["coding"][0]["code"] == "62323"  # CPT lumbar/sacral epidural
    assert {"S000.22", "S004.05"} <= set(card["extension"][TRACE_KEY]["statementIds"])
    assert "comprehensive-care" not in by_code(ev)  # no PT push for a non-muscular pain


def test_physical_therapy_suggested_unless_already_there(kb: Knowledge) -> None:
    snap = snap_of(kb, condition("M54.50"))
    card = by_code(sign(kb, snap))["comprehensive-care"]
    check_card(card, kb)
    pt = card["suggestions"][0]["actions"][0]["resource"]
    assert pt["code"]["coding"][0]["code"] == "91251008"  # SNOMED physical therapy procedure
    assert "S000.25" in card["detail"]
    existing = {
        "resourceType": "ServiceRequest",
        "id": "pt",
        "status": "active",
        "intent": "order",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91251008"}]},
        "subject": {"reference": "Patient/p1"},
    }
    assert "comprehensive-care" not in by_code(sign(kb, snap_of(kb, condition("M54.50"), existing)))


def test_dose_checks(kb: Knowledge) -> None:
    weighed = snap_of(kb, condition("M54.50"), observation("29463-7", 70, "kg", RECENT))
    ok = by_code(sign(kb, weighed, anesthetic_order("Lidocaine 1% injection", ml=5)))
    # 5 mL of 1% lidocaine = 50 mg, far below any plain lidocaine maximum (4.5 mg/kg, 300 mg)
    assert ok["dose-ok"]["indicator"] == "info"
    check_card(ok["dose-ok"], kb)
    over = by_code(sign(kb, weighed, anesthetic_order("Lidocaine 1% injection", ml=40)))
    # 40 mL of 1% = 400 mg: above the 300 mg cap of plain lidocaine
    assert over["dose-exceeds"]["indicator"] == "critical"
    assert "S000.28" in over["dose-exceeds"]["extension"][TRACE_KEY]["statementIds"]
    unweighed = by_code(sign(kb, snap_of(kb, condition("M54.50")), anesthetic_order(ml=5)))
    card = unweighed["dose-check-incomplete"]
    assert "weight" in card["summary"] and card["indicator"] == "warning"
    novolume = by_code(sign(kb, weighed, anesthetic_order(ml=None)))
    assert "volume" in novolume["dose-check-incomplete"]["summary"]


def test_earlier_anesthetic_counts_toward_the_day(kb: Knowledge) -> None:
    given = {
        "resourceType": "MedicationAdministration",
        "id": "ma-1",
        "status": "completed",
        "medicationCodeableConcept": {"text": "Lidocaine 1%"},
        "effectiveDateTime": (NOW - timedelta(hours=3)).isoformat(),
        "dosage": {"dose": {"value": 250, "unit": "mg", "code": "mg"}},
    }
    snap = snap_of(kb, condition("M54.50"), observation("29463-7", 70, "kg", RECENT), given)
    cards = by_code(sign(kb, snap, anesthetic_order("Lidocaine 1% injection", ml=10)))
    assert cards["local-anesthetic-24h"]["indicator"] == "warning"
    check_card(cards["local-anesthetic-24h"], kb)
    # 250 mg earlier + 100 mg now = 350 mg in 24 h: above the 300 mg cap of plain lidocaine
    assert "dose-exceeds" in cards


def test_course_limit(kb: Knowledge) -> None:
    def tpi(i: int) -> dict[str, Any]:
        return {
            "resourceType": "Procedure",
            "id": f"tpi-{i}",
            "status": "completed",
            "code": {"coding": [{"system": CPT, "code": "20552"}]},
            "performedDateTime": (NOW - timedelta(days=20 * i + 5)).isoformat(),
        }

    lbp = condition("M54.50", onset="2018-01-01")  # chronic: 2-8 sessions (S000.20)
    seven = by_code(sign(kb, snap_of(kb, lbp, *(tpi(i) for i in range(7)))))
    assert "course-limit" not in seven
    eight = by_code(sign(kb, snap_of(kb, lbp, *(tpi(i) for i in range(8)))))
    card = eight["course-limit"]
    check_card(card, kb)
    assert "8 TPI sessions in 365 days" in card["summary"] and "2-8" in card["summary"]


def test_patient_view(kb: Knowledge) -> None:
    assert (
        patient_view(snap_of(kb), kb, hook_instance="h", fhir=FHIR_R4).cards == []
    )  # nothing relevant
    snap = snap_of(
        kb,
        condition("M54.50"),
        med_request("309362", "Clopidogrel 75 MG Oral Tablet"),
        {
            "resourceType": "Procedure",
            "id": "tpi-1",
            "status": "completed",
            "code": {"coding": [{"system": CPT, "code": "20553"}]},
            "performedDateTime": (NOW - timedelta(days=20)).isoformat(),
        },
    )
    cards = by_code(patient_view(snap, kb, hook_instance="h", fhir=FHIR_R4, options=OPTIONS))
    status = cards["tpi-status"]
    check_card(status, kb)
    assert status["indicator"] == "info"
    assert status["summary"].startswith("TPI not yet supported")
    assert "Reassessment" in status["detail"] and "due now" in status["detail"]  # 20 days: 2-4 wk
    assert "No trigger point has been recorded" in status["detail"]  # the engine's reason
    assert "conservative_care" in status["extension"][TRACE_KEY]["needs"]
    assert cards["caution-antiplatelet"]["indicator"] == "warning"
    assert ORDERS_KEY not in status["extension"]


def test_patient_view_radiculopathy_suggests_a_referral(kb: Knowledge) -> None:
    snap = snap_of(kb, condition("M54.17"), condition("M54.50", rid="lbp"))
    card = by_code(patient_view(snap, kb, hook_instance="h", fhir=FHIR_R4, options=OPTIONS))[
        "tpi-status"
    ]
    check_card(card, kb)
    assert card["indicator"] == "warning"
    assert card["summary"].startswith("TPI not indicated. Radicular pathway")
    assert card["suggestions"][0]["actions"][0]["type"] == "create"


def test_record_without_birth_date(kb: Knowledge) -> None:
    who = {"resourceType": "Patient", "id": "p1", "gender": "male"}
    cards = by_code(sign(kb, snap_of(kb, condition("M54.50"), who=who)))
    assert list(cards) == ["record-incomplete"]
    assert "patient.age_years" in cards["record-incomplete"]["detail"]


def test_source_unavailable_card(kb: Knowledge) -> None:
    card = source_unavailable(
        "order-sign",
        "h",
        why="slow",
        knowledge_version=kb.version,
        patient_id="p1",
        options=OPTIONS,
    )
    assert card["indicator"] == "warning" and len(card["summary"]) < 140
    assert "no TPI checks" in card["summary"]


def test_card_uuids_are_stable_per_hook_instance(kb: Knowledge) -> None:
    snap = snap_of(kb, med_request("855332", "Warfarin Sodium 5 MG Oral Tablet"))
    a = [c["uuid"] for c in sign(kb, snap).cards]
    b = [c["uuid"] for c in sign(kb, snap).cards]
    assert a == b and len(set(a)) == len(a)
    draft = bundle(tpi_service_request())
    other = order_hook(
        "order-sign", snap, draft, kb, hook_instance="hi-2", fhir=FHIR_R4, options=OPTIONS
    )
    assert not set(a) & {c["uuid"] for c in other.cards}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    codes=st.lists(
        st.sampled_from(
            [
                "M54.16",
                "M54.50",
                "Z33.1",
                "D68.9",
                "M79.7",
                "C50.911",
                "M48.06",
                "S13.4XXA",
                "M54.2",
            ]
        ),
        max_size=4,
        unique=True,
    ),
    drugs=st.lists(st.sampled_from(["855332", "309362", "243670"]), max_size=2, unique=True),
    text=st.text(min_size=1, max_size=300),
    ml=st.one_of(st.none(), st.floats(min_value=0.1, max_value=200)),
)
def test_card_invariants_hold_for_any_record(
    kb: Knowledge, codes: list[str], drugs: list[str], text: str, ml: float | None
) -> None:
    resources = [condition(c, rid=f"c{i}") for i, c in enumerate(codes)]
    resources += [med_request(d, f"drug {d}") for d in drugs]
    snap = snap_of(kb, *resources, observation("29463-7", 70, "kg", RECENT))
    orders = (tpi_service_request(), anesthetic_order(f"Lidocaine 1% {text}", ml=ml))
    ev = sign(kb, snap, *orders)
    assert ev.cards
    for card in ev.cards:
        check_card(card, kb)
    pv = patient_view(snap, kb, hook_instance="h", fhir=FHIR_R4, options=OPTIONS)
    for card in pv.cards:
        check_card(card, kb)


@pytest.mark.shared_data
def test_synthea_order_sign_bleeding_risk_cards(kb: Knowledge) -> None:
    """Active warfarin/clopidogrel orders give the caution; stopped-only orders do not."""
    counts = {"warfarin": 0, "clopidogrel": 0, "stopped_only": 0}
    for path in synthea_files():
        b = load(path)
        snap = read_bundle(b, kb, now=NOW)
        cards = by_code(sign(kb, snap))
        warfarin, clopidogrel = order_statuses(b, {"855332"}), order_statuses(b, {"309362"})
        assert ("caution-anticoagulant" in cards) == ("active" in warfarin), path.name
        assert ("caution-antiplatelet" in cards) == ("active" in clopidogrel), path.name
        counts["warfarin"] += "active" in warfarin
        counts["clopidogrel"] += "active" in clopidogrel
        if (warfarin | clopidogrel) and "active" not in warfarin | clopidogrel:
            counts["stopped_only"] += 1
            assert not {"caution-anticoagulant", "caution-antiplatelet"} & set(cards)
        for card in cards.values():
            check_card(card, kb)
    # Synthea data: 32 patients on active warfarin, 21 on active clopidogrel
    assert counts == {"warfarin": 32, "clopidogrel": 21, "stopped_only": 13}


@pytest.mark.shared_data
def test_synthea_patient_view_cards(kb: Knowledge) -> None:
    shown = 0
    for path in synthea_files():
        snap = read_bundle(path.read_bytes(), kb, now=NOW)
        ev = patient_view(snap, kb, hook_instance="h", fhir=FHIR_R4, options=OPTIONS)
        assert bool(ev.cards) == snap.relevant
        shown += bool(ev.cards)
        for card in ev.cards:
            check_card(card, kb)
    assert shown >= 25


@pytest.mark.shared_data
def test_synthea_radiculopathy_redirects(kb: Knowledge) -> None:
    """A real record plus a radiculopathy diagnosis: the TPI order is redirected."""
    path = synthea_files()[0]
    b = load(path)
    pid = next(
        e["resource"]["id"] for e in b["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    b["entry"].append({"resource": condition("M54.16", ICD10, pid=pid, rid="radic")})
    b["entry"][-1]["resource"]["subject"] = {"reference": f"urn:uuid:{pid}"}
    cards = by_code(sign(kb, read_bundle(b, kb, now=NOW)))
    assert "non-myofascial" in cards
    assert cards["non-myofascial"]["suggestions"][0]["label"].startswith("Replace the TPI")
