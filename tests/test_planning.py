"""The procedure planner: refusal, technique cards, totals, acknowledgements, steroid, examples."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triggerpath.domain.planning import (
    ProcedurePlan,
    parse_plan_request,
    plan_from_request,
    plan_json_schema,
)
from triggerpath.domain.policy import Policy
from triggerpath.errors import InvalidInput
from triggerpath.knowledge import Knowledge

from .conftest import AS_OF, ROOT, example
from .strategies import KB

PLANS = ROOT / "examples" / "plans"
EXPECTED: dict[str, Any] = json.loads((PLANS / "expected.json").read_text())


def plan_data(assessment: str = "ql_chronic_low_back", **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "assessment": example(assessment),
        "targets": [{"muscle": "quadratus_lumborum", "side": "right", "sites": 2}],
        "injectate": {"solutions": [{"agent": "lidocaine", "percent": 0.5}]},
    }
    data.update(changes)
    return data


def run(data: dict[str, Any], kb: Knowledge, policy: Policy | None = None) -> ProcedurePlan:
    req = parse_plan_request(data, kb)
    return plan_from_request(req, kb, as_of=AS_OF, policy=policy or Policy())


def fields(exc: pytest.ExceptionInfo[InvalidInput]) -> dict[str, str]:
    return {p.field: p.reason for p in exc.value.problems}


# --------------------------------------------------------------------------- refusal
def test_not_appropriate_assessment_is_refused_with_the_engines_reasons(kb: Knowledge) -> None:
    data = plan_data(
        "sciatica_below_knee",
        targets=[{"muscle": "gluteus_minimus", "side": "left", "sites": 1}],
    )
    plan = run(data, kb)
    assert plan.status == "refused" and plan.verdict == "not_indicated"
    assert plan.dose is None and plan.targets == [] and plan.injectate is None
    codes = {r.code for r in plan.reasons}
    assert "pain_generator.radicular_lumbar" in codes
    assert all(r.statement_ids for r in plan.reasons)
    assert "S000.22" in {s for r in plan.reasons for s in r.statement_ids}


def test_refusal_does_not_need_the_weight(kb: Knowledge) -> None:
    data = plan_data("sciatica_below_knee")
    del data["assessment"]["patient"]["weight_kg"]
    assert run(data, kb).status == "refused"


# --------------------------------------------------------------------------- a ready plan
def test_ready_plan_has_technique_totals_checklist_and_follow_up(kb: Knowledge) -> None:
    data = plan_data(
        targets=[
            {"muscle": "quadratus_lumborum", "side": "right", "sites": 3},
            {"muscle": "gluteus_medius", "side": "right", "sites": 2, "volume_ml_per_site": 0.5},
        ],
        injectate={"solutions": [{"agent": "lidocaine", "percent": 1}], "saline_parts": 1},
    )
    plan = run(data, kb)
    assert plan.status == "ready", plan.headline
    ql, gm = plan.targets
    # S000.16: QL with a 28 G needle 60-90 mm long, down to the transverse process
    assert (ql.needle.gauge_min, ql.needle.gauge_max) == (28, 28)
    assert (ql.needle.length_mm_min, ql.needle.length_mm_max) == (60, 90)
    assert ql.volume_ml_per_site == 1 and ql.volume_ml == 3  # default: the muscle's upper volume
    assert gm.volume_ml == 1
    assert "kidney" in {h.id for h in ql.hazards}
    assert ql.position and ql.landmarks and ql.angle and ql.guidance == "ultrasound_recommended"
    steps = {s.code: s for s in ql.steps}
    assert {"aspiration", "fanning", "volume_per_site"} <= set(steps)
    assert "S003.07" in steps["aspiration"].statement_ids  # aspirate to exclude blood
    assert {"S002.20", "S003.07"} <= set(steps["volume_per_site"].statement_ids)  # 0.5-1 mL
    assert ql.volume_range_ml == "0.5-1 mL per site"
    # totals: 4 mL of lidocaine 0.5% (1% 1:1 in saline) = 2 mL of 1% = 20 mg
    assert plan.injectate is not None and plan.dose is not None
    assert plan.injectate.total_ml == 4 and plan.injectate.saline_ml == 2
    assert plan.injectate.mixture_mg_per_ml == {"lidocaine": Decimal(5)}
    assert plan.dose.solutions[0].mg == 20 and plan.dose.level == "ok"
    checklist = {c.code: c for c in plan.checklist}
    assert "S002.17" in checklist["informed_consent"].statement_ids
    assert "benefits" in checklist["informed_consent"].text
    assert "alternatives" in checklist["informed_consent"].text
    assert "S002.32" in checklist["medication_review"].statement_ids
    assert "S002.25" in checklist["qualified_operator"].statement_ids
    assert {"contraindication_check", "sterile_technique"} <= set(checklist)
    assert all("S002.18" in m.statement_ids for m in plan.materials)
    assert any("28 G, 60-90 mm" in m.name for m in plan.materials)
    assert any(m.code == "ultrasound" for m in plan.materials)
    assert any(m.code == "saline" for m in plan.materials)
    # S000.20: chronic 2-8 sessions; S003.12: reassess 2-4 weeks after as_of
    assert (plan.expected_course.sessions_min, plan.expected_course.sessions_max) == (2, 8)
    assert plan.reassessment is not None
    assert plan.reassessment.earliest == AS_OF + timedelta(weeks=2)
    assert plan.reassessment.latest == AS_OF + timedelta(weeks=4)
    assert "S003.12" in plan.reassessment.statement_ids
    assert {a.code for a in plan.alternatives} == {"dry_needling", "jet_injection"}
    assert plan.steroid is not None and plan.steroid.status == "not_indicated"


def test_superficial_muscles_use_25_to_30_gauge(kb: Knowledge) -> None:
    """S002.22 / S002.18: 25-30 G needles for the superficial upper back muscles."""
    data = plan_data(
        "upper_trapezius_tension_headache",
        targets=[{"muscle": "upper_trapezius", "side": "bilateral", "sites": 4}],
    )
    plan = run(data, kb)
    card = plan.targets[0]
    assert (card.needle.gauge_min, card.needle.gauge_max) == (25, 30)
    assert card.guidance == "palpation" and "pleura" in {h.id for h in card.hazards}
    assert not any(m.code == "ultrasound" for m in plan.materials)


def test_plan_is_deterministic(kb: Knowledge) -> None:
    assert run(plan_data(), kb) == run(plan_data(), kb)


# --------------------------------------------------------------------------- dose and blocking
def test_a_plan_over_the_limit_is_blocked(kb: Knowledge) -> None:
    # 3 mL bupivacaine 0.5% = 15 mg now; with 385 mg earlier today exactly 400 mg in 24 hours
    # (Marcaine label, S000.28): allowed with an acknowledgement; 386 mg earlier: blocked
    data = plan_data(
        targets=[{"muscle": "quadratus_lumborum", "side": "right", "sites": 3}],
        injectate={"solutions": [{"agent": "bupivacaine", "percent": 0.5}], "saline_parts": 0},
        prior_24h=[{"agent": "bupivacaine", "mg": 386}],
        acknowledged_cautions=["dose_near_limit"],
    )
    plan = run(data, kb)
    assert plan.status == "blocked" and plan.dose is not None and plan.dose.level == "exceeds"
    assert any(i.code == "dose_exceeds" and i.blocking for i in plan.issues)
    assert plan.reasons[0].code == "dose_exceeds"
    assert plan.dose.daily[0].total_mg == 401
    data["prior_24h"] = [{"agent": "bupivacaine", "mg": 385}]
    plan = run(data, kb)
    assert plan.status == "ready" and plan.dose is not None and plan.dose.level == "caution"


def test_dose_near_the_limit_needs_acknowledgement(kb: Knowledge) -> None:
    # 84 kg, 178 cm man: lean weight 62.7 kg; bupivacaine 2 mg/kg = 125.4 mg (conservative)
    data = plan_data(
        targets=[
            {"muscle": "quadratus_lumborum", "side": "right", "sites": 10},
            {"muscle": "gluteus_medius", "side": "right", "sites": 10},
        ],
        injectate={"solutions": [{"agent": "bupivacaine", "percent": 0.5}]},
    )  # 20 mL x 5 mg = 100 mg: 0.797 -> ok; push it over 0.8 with an earlier dose
    data["prior_24h"] = [{"agent": "bupivacaine", "mg": 250}]  # 350 of 400 in 24 h
    plan = run(data, kb)
    assert plan.dose is not None and plan.dose.level == "caution"
    assert plan.status == "needs_acknowledgement"
    assert plan.acknowledgements.missing == ["dose_near_limit"]
    data["acknowledged_cautions"] = ["dose_near_limit"]
    plan = run(data, kb)
    assert plan.status == "ready" and plan.acknowledgements.acknowledged == ["dose_near_limit"]


def test_anticoagulant_needs_an_acknowledgement_that_the_plan_records(kb: Knowledge) -> None:
    data = plan_data(
        "levator_scapulae_on_apixaban",
        targets=[{"muscle": "levator_scapulae", "side": "left", "sites": 1}],
    )
    plan = run(data, kb)
    assert plan.status == "needs_acknowledgement"
    assert plan.acknowledgements.missing == ["anticoagulant"]
    assert "S002.32" in plan.reasons[0].statement_ids
    data["acknowledged_cautions"] = ["anticoagulant", "typo_code"]
    plan = run(data, kb)
    assert plan.status == "ready"
    assert plan.acknowledgements.acknowledged == ["anticoagulant"]
    assert plan.acknowledgements.unmatched == ["typo_code"]
    # hazards are answered by the technique card, not by an acknowledgement
    assert not any(c.startswith("hazard.") for c in plan.acknowledgements.required)


def test_blocking_wins_over_missing_acknowledgement(kb: Knowledge) -> None:
    data = plan_data(
        "warfarin",
        targets=[{"muscle": "quadratus_lumborum", "side": "left", "sites": 20}],
        injectate={"solutions": [{"agent": "lidocaine", "percent": 2}]},
    )
    plan = run(data, kb)
    assert plan.status == "blocked" and "anticoagulant" in plan.acknowledgements.missing


def test_only_confirmed_trigger_points_are_injected(kb: Knowledge) -> None:
    """S003.11 / S002.10: never inject a trigger point not identified by palpation."""
    wrong_side = plan_data(targets=[{"muscle": "quadratus_lumborum", "side": "left"}])
    plan = run(wrong_side, kb)
    assert plan.status == "blocked"
    assert plan.issues[0].code == "target_not_confirmed"
    assert plan.issues[0].fields == ["targets[0]"]
    other = plan_data(targets=[{"muscle": "piriformis", "side": "right"}])
    assert run(other, kb).status == "blocked"
    both = plan_data(targets=[{"muscle": "quadratus_lumborum", "side": "bilateral"}])
    assert run(both, kb).status == "blocked"  # only the right side was examined
    bilateral = plan_data(
        "upper_trapezius_tension_headache",
        targets=[{"muscle": "upper_trapezius", "side": "left", "sites": 2}],
    )
    assert run(bilateral, kb).status == "ready"  # a bilateral finding covers each side


def test_volume_per_site_outside_the_sources(kb: Knowledge) -> None:
    high = plan_data(
        targets=[{"muscle": "quadratus_lumborum", "side": "right", "volume_ml_per_site": 2}]
    )
    plan = run(high, kb)
    assert plan.status == "blocked" and plan.issues[0].code == "volume_above_range"
    assert {"S002.20", "S003.07"} <= set(plan.issues[0].statement_ids)
    low = plan_data(
        targets=[{"muscle": "quadratus_lumborum", "side": "right", "volume_ml_per_site": 0.3}]
    )
    plan = run(low, kb)
    assert plan.status == "ready"
    assert [(i.code, i.blocking) for i in plan.issues] == [("volume_below_range", False)]


def test_preservative_allergy_needs_a_preservative_free_form(kb: Knowledge) -> None:
    data = plan_data(
        injectate={"solutions": [{"agent": "lidocaine", "percent": 0.5, "epinephrine": True}]}
    )
    data["assessment"]["contraindications"]["preservative_allergy"] = True
    data["acknowledged_cautions"] = ["preservative_allergy"]
    plan = run(data, kb)  # lidocaine 0.5% with epinephrine: multiple-dose vials only
    assert plan.status == "blocked"
    assert any(i.code == "no_preservative_free_form" for i in plan.issues)
    data["injectate"] = {"solutions": [{"agent": "lidocaine", "percent": 1}]}
    plan = run(data, kb)
    assert plan.status == "ready"
    assert plan.injectate is not None
    assert "MPF" in plan.injectate.solutions[0].preservative_free[0]


# --------------------------------------------------------------------------- steroid
def _with_failed_tpis(data: dict[str, Any]) -> dict[str, Any]:
    data["assessment"]["conservative_care"].append(
        {"modality": "trigger_point_injection", "weeks": 6, "response": "none"}
    )
    data["acknowledged_cautions"] = ["prior_tpi_inadequate"]
    return data


def test_steroid_only_for_persistent_trigger_points(kb: Knowledge) -> None:
    """S003.09: corticosteroid only for trigger points that failed other treatment, 4-30 mg."""
    asked = plan_data(steroid={"agent": "triamcinolone", "mg": 20})
    plan = run(asked, kb)
    assert plan.status == "blocked" and plan.steroid is not None
    assert plan.steroid.status == "blocked"
    assert any(i.code == "steroid_not_indicated" for i in plan.issues)
    plan = run(_with_failed_tpis(copy.deepcopy(asked)), kb)
    assert plan.status == "ready" and plan.steroid is not None
    assert plan.steroid.status == "included" and plan.steroid.mg == 20
    assert {"S003.09", "S004.02"} <= set(plan.steroid.statement_ids)
    assert "every patient" in plan.steroid.caveat  # S004.02
    assert any(m.code == "steroid" for m in plan.materials)
    offered = run(_with_failed_tpis(plan_data()), kb)
    assert offered.steroid is not None and offered.steroid.status == "available"


@pytest.mark.parametrize(
    ("mg", "status", "code"),
    [
        ("30", "ready", None),
        ("30.5", "blocked", "steroid_dose_above_range"),
        ("3", "ready", "steroid_dose_below_range"),
    ],
)
def test_steroid_dose_range_4_to_30_mg(
    kb: Knowledge, mg: str, status: str, code: str | None
) -> None:
    plan = run(_with_failed_tpis(plan_data(steroid={"agent": "dexamethasone", "mg": mg})), kb)
    assert plan.status == status
    assert [i.code for i in plan.issues] == ([code] if code else [])


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"targets": [{"muscle": "biceps", "side": "right"}]}, "targets[0].muscle"),
        ({"targets": [{"muscle": "quadratus_lumborum", "side": "up"}]}, "targets[0].side"),
        (
            {"targets": [{"muscle": "quadratus_lumborum", "side": "right", "sites": 0}]},
            "targets[0].sites",
        ),
        (
            {
                "targets": [
                    {"muscle": "quadratus_lumborum", "side": "right", "volume_ml_per_site": 0}
                ]
            },
            "targets[0].volume_ml_per_site",
        ),
        (
            {
                "targets": [
                    {"muscle": "quadratus_lumborum", "side": "right", "volume_ml_per_site": 9}
                ]
            },
            "targets[0].volume_ml_per_site",
        ),
        ({"targets": []}, "targets"),
        (
            {"injectate": {"solutions": [{"agent": "procaine", "percent": 1}]}},
            "injectate.solutions[0].agent",
        ),
        (
            {"injectate": {"solutions": [{"agent": "lidocaine", "percent": 0}]}},
            "injectate.solutions[0].percent",
        ),
        (
            {"injectate": {"solutions": [{"agent": "lidocaine", "percent": 0.7}]}},
            "injectate.solutions[0].percent",
        ),
        (
            {"injectate": {"solutions": [{"agent": "lidocaine", "percent": 1, "parts": 0}]}},
            "injectate.solutions[0].parts",
        ),
        (
            {
                "injectate": {
                    "solutions": [{"agent": "lidocaine", "percent": 1}],
                    "saline_parts": -1,
                }
            },
            "injectate.saline_parts",
        ),
        ({"injectate": {"solutions": []}}, "injectate.solutions"),
        ({"prior_24h": [{"agent": "lidocaine", "mg": -5}]}, "prior_24h[0].mg"),
        ({"steroid": {"agent": "prednisone", "mg": 10}}, "steroid.agent"),
        ({"steroid": {"agent": "triamcinolone", "mg": 0}}, "steroid.mg"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_every_bad_plan_input_names_its_field(
    kb: Knowledge, change: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as exc:
        run(plan_data(**change), kb)
    assert field in fields(exc), fields(exc)


def test_assessment_problems_carry_the_assessment_prefix(kb: Knowledge) -> None:
    data = plan_data()
    data["assessment"]["pain"]["nrs"] = 14
    data["assessment"]["trigger_points"][0]["muscle"] = "biceps"
    with pytest.raises(InvalidInput) as exc:
        run(data, kb)
    assert "assessment.pain.nrs" in fields(exc)
    with pytest.raises(InvalidInput) as exc:
        data = plan_data()
        data["assessment"]["trigger_points"][0]["muscle"] = "biceps"
        run(data, kb)
    assert "assessment.trigger_points[0].muscle" in fields(exc)
    with pytest.raises(InvalidInput):
        parse_plan_request([], kb)


@pytest.mark.parametrize(("weight", "words"), [(None, "needed"), (12, "adult range")])
def test_weight_is_needed_to_plan(kb: Knowledge, weight: int | None, words: str) -> None:
    data = plan_data()
    if weight is None:
        del data["assessment"]["patient"]["weight_kg"]
    else:
        data["assessment"]["patient"]["weight_kg"] = weight
    with pytest.raises(InvalidInput) as exc:
        run(data, kb)
    assert words in fields(exc)["assessment.patient.weight_kg"]


def test_plan_schema_lists_the_knowledge_ids(kb: Knowledge) -> None:
    schema = plan_json_schema(kb)
    defs = schema["$defs"]
    assert "quadratus_lumborum" in defs["Target"]["properties"]["muscle"]["enum"]
    assert "bupivacaine" in defs["InjectateSolution"]["properties"]["agent"]["enum"]
    assert "quadratus_lumborum" in defs["TriggerPointFinding"]["properties"]["muscle"]["enum"]


# --------------------------------------------------------------------------- examples
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_plan_reaches_its_expected_status(name: str, kb: Knowledge) -> None:
    plan = run(json.loads((PLANS / f"{name}.json").read_text()), kb)
    want = EXPECTED[name]
    assert plan.status == want["status"], plan.headline
    assert (plan.dose.level if plan.dose else None) == want["dose_level"]


def test_every_example_plan_has_an_expectation_and_the_set_is_complete() -> None:
    files = {p.stem for p in PLANS.glob("*.json")} - {"expected"}
    assert files == set(EXPECTED)
    statuses = {e["status"] for e in EXPECTED.values()}
    assert statuses == {"ready", "blocked", "refused", "needs_acknowledgement"}
    pleura = run(json.loads((PLANS / "rhomboids_upper_back_pleura.json").read_text()), KB)
    assert "pleura" in {h.id for t in pleura.targets for h in t.hazards}


# --------------------------------------------------------------------------- the property
def _exceeds_any_limit(plan: ProcedurePlan, data: dict[str, Any]) -> bool:
    """Exact recomputation of the totals against the limits the dose check reports."""
    assert plan.dose is not None
    total = sum(
        (
            Fraction(str(t.get("volume_ml_per_site", 1))) * t.get("sites", 1)
            for t in data["targets"]
        ),
        Fraction(0),
    )
    inj = data["injectate"]
    parts = sum(Fraction(str(s.get("parts", 1))) for s in inj["solutions"]) + Fraction(
        str(inj.get("saline_parts", 0))
    )
    mg: dict[tuple[str, bool], Fraction] = {}
    for s in inj["solutions"]:
        key = (s["agent"], bool(s.get("epinephrine", False)))
        share = total * Fraction(str(s.get("parts", 1))) / parts
        mg[key] = mg.get(key, Fraction(0)) + Fraction(str(s["percent"])) * 10 * share
    limits = {(a.agent, a.epinephrine): Fraction(a.max_mg) for a in plan.dose.agents}
    if any(mg[k] > limits[k] for k in mg):
        return True
    if sum((mg[k] / limits[k] for k in mg), Fraction(0)) > 1:
        return True
    for d in plan.dose.daily:
        earlier = sum(
            (Fraction(str(p["mg"])) for p in data.get("prior_24h", []) if p["agent"] == d.agent),
            Fraction(0),
        )
        now = sum((v for k, v in mg.items() if k[0] == d.agent), Fraction(0))
        if d.max_mg is not None and earlier + now > d.max_mg:
            return True
    return False


FORMS = [
    (la.id, epi, float(p))
    for la in KB.injectates.local_anesthetics
    for epi in (False, True)
    for p in la.marketed(epi)
]
plan_inputs = st.fixed_dictionaries(
    {
        "targets": st.lists(
            st.fixed_dictionaries(
                {
                    "muscle": st.sampled_from(["quadratus_lumborum", "gluteus_medius"]),
                    "side": st.just("right"),
                    "sites": st.integers(min_value=1, max_value=20),
                    "volume_ml_per_site": st.sampled_from([0.5, 0.75, 1.0]),
                }
            ),
            min_size=1,
            max_size=3,
        ),
        "solutions": st.lists(
            st.tuples(st.sampled_from(FORMS), st.integers(min_value=1, max_value=3)),
            min_size=1,
            max_size=3,
        ),
        "saline_parts": st.integers(min_value=0, max_value=3),
        "prior": st.lists(
            st.tuples(
                st.sampled_from([la.id for la in KB.injectates.local_anesthetics]),
                st.integers(min_value=1, max_value=400),
            ),
            max_size=2,
        ),
        "weight": st.integers(min_value=40, max_value=150),
        "height": st.none() | st.integers(min_value=140, max_value=200),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan_inputs)
def test_property_no_plan_is_ready_when_a_total_exceeds_a_limit(raw: dict[str, Any]) -> None:
    assessment = example("ql_chronic_low_back")
    assessment["patient"]["weight_kg"] = raw["weight"]
    assessment["patient"]["height_cm"] = raw["height"]
    data = {
        "assessment": assessment,
        "targets": raw["targets"],
        "injectate": {
            "solutions": [
                {"agent": a, "percent": p, "epinephrine": e, "parts": n}
                for (a, e, p), n in raw["solutions"]
            ],
            "saline_parts": raw["saline_parts"],
        },
        "prior_24h": [{"agent": a, "mg": mg} for a, mg in raw["prior"]],
        "acknowledged_cautions": ["dose_near_limit"],
    }
    plan = run(data, KB)
    assert plan.dose is not None
    if _exceeds_any_limit(plan, data):
        assert plan.dose.level == "exceeds"
        assert plan.status == "blocked"
    if plan.dose.level == "exceeds":
        assert plan.status == "blocked"
    if plan.status == "ready":
        assert plan.dose.level in ("ok", "caution")


def test_example_files_are_valid_json() -> None:
    for path in PLANS.glob("*.json"):
        assert isinstance(json.loads(path.read_text()), dict), path
