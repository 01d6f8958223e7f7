"""Engine behaviour verdict by verdict, with the statement ids behind each reason."""

from __future__ import annotations

from typing import Any

import pytest

from triggerpath.domain.engine import assess
from triggerpath.domain.policy import Policy
from triggerpath.domain.recommendation import Recommendation
from triggerpath.domain.validation import parse_assessment
from triggerpath.errors import InvalidInput
from triggerpath.knowledge import Knowledge

from .conftest import AS_OF, example


def run(data: dict[str, Any], kb: Knowledge, policy: Policy | None = None) -> Recommendation:
    a = parse_assessment(data, kb)
    return assess(a, kb, as_of=AS_OF, policy=policy) if policy else assess(a, kb, as_of=AS_OF)


def codes(rec: Recommendation) -> set[str]:
    return {r.code for r in rec.reasons}


def test_clean_case_is_tpi_appropriate_with_comprehensive_plan(
    clean: dict[str, Any], kb: Knowledge
) -> None:
    rec = run(clean, kb)
    assert rec.verdict == "tpi_appropriate"
    assert "trigger_point_criteria_met" in codes(rec)
    plan = {i.code for i in rec.comprehensive_care}
    # S000.25: never monotherapy - PT, education, oral medication (+ home exercise, S000.26)
    assert {"physical_therapy", "patient_education", "oral_medication", "home_exercise"} <= plan
    assert rec.expected_course.phase == "chronic"
    # S000.20: chronic 2-8 sessions
    assert (rec.expected_course.sessions_min, rec.expected_course.sessions_max) == (2, 8)
    assert {i.code for i in rec.before_procedure} >= {"informed_consent", "dose_limits"}
    assert rec.knowledge_version == kb.version and rec.as_of == AS_OF
    assert all(r.statement_ids for r in [*rec.reasons, *rec.findings])
    assert all(c.statement_ids for c in rec.cautions)


def test_red_flag_wins_over_everything(clean: dict[str, Any], kb: Knowledge) -> None:
    clean["red_flags"]["suspected_infection"] = True
    clean["patient"]["weight_kg"] = 80
    clean["contraindications"]["bleeding_disorder"] = True
    clean["pain_generators"]["radicular"]["pain_below_knee"] = True
    rec = run(clean, kb)
    assert rec.verdict == "urgent_referral"
    assert codes(rec) == {"red_flag.suspected_infection"}
    found = {f.code for f in rec.findings}
    # all findings are still listed
    assert {"pain_generator.radicular_lumbar", "contraindication.bleeding_disorder"} <= found
    assert rec.reasons[0].fields == ["red_flags.suspected_infection"]
    assert "S002.12" in rec.reasons[0].statement_ids


@pytest.mark.parametrize(
    ("path", "redirect"),
    [
        (("radicular", "pain_below_knee"), "epidural_steroid_injection"),
        (("radicular", "imaging_root_compression"), "epidural_steroid_injection"),
        (("structural", "instability"), "structural_treatment"),
        (("systemic", "inflammatory_arthritis"), "systemic_evaluation"),
        (("facet", "medial_branch_block_positive"), "medial_branch_block"),
        (("discogenic", "discography_positive"), "discogenic_evaluation"),
        (("sacroiliac", "sacroiliac_block_positive"), "sacroiliac_evaluation"),
    ],
)
def test_other_pain_generator_redirects(
    path: tuple[str, str], redirect: str, clean: dict[str, Any], kb: Knowledge
) -> None:
    clean["pain_generators"][path[0]][path[1]] = True
    rec = run(clean, kb)
    assert rec.verdict == "not_indicated"
    assert rec.redirect == redirect
    assert rec.reasons[0].fields == [f"pain_generators.{path[0]}.{path[1]}"]


def test_radicular_redirect_cites_the_source(clean: dict[str, Any], kb: Knowledge) -> None:
    clean["pain_generators"]["radicular"]["pain_below_knee"] = True
    rec = run(clean, kb)
    # S000.22: radicular pain below the knee -> epidural steroid injection, not TPI
    assert "S000.22" in rec.reasons[0].statement_ids


def test_several_generators_list_all_redirects_in_priority(
    clean: dict[str, Any], kb: Knowledge
) -> None:
    clean["pain_generators"]["systemic"]["fibromyalgia"] = True
    clean["pain_generators"]["radicular"]["dermatomal_pain"] = True
    rec = run(clean, kb)
    assert rec.redirect == "epidural_steroid_injection"
    assert rec.redirects == ["epidural_steroid_injection", "systemic_evaluation"]


def test_sacroiliac_needs_three_of_five_provocation_tests(
    clean: dict[str, Any], kb: Knowledge
) -> None:
    # Laslett 2005: 3 or more of 5 provocation tests positive
    clean["pain_generators"]["sacroiliac"] = {
        "pain_over_sacroiliac_joint": True,
        "provocation_tests_positive": 2,
    }
    assert run(clean, kb).verdict == "tpi_appropriate"
    clean["pain_generators"]["sacroiliac"]["provocation_tests_positive"] = 3
    assert run(clean, kb).redirect == "sacroiliac_evaluation"


def test_upper_back_mimics_only_screened_for_upper_regions(
    clean: dict[str, Any], kb: Knowledge
) -> None:
    clean["pain_generators"]["upper_back_mimics"] = {}
    rec = run(clean, kb)  # low back only: the mimic screen does not apply
    assert rec.verdict == "tpi_appropriate"
    assert not any("upper_back_mimics" in n.field for n in rec.needs)


def test_criteria_not_met_says_what_is_missing(clean: dict[str, Any], kb: Knowledge) -> None:
    clean["trigger_points"] = [
        clean["trigger_points"][0]
        | {"taut_band": False, "referred_pain": False, "recognised_pain": False}
    ]
    rec = run(clean, kb)
    assert rec.verdict == "insufficient_findings"
    text = rec.reasons[0].text
    assert "taut band" in text and "recognised pain or referred pain" in text
    assert "S000.09" in rec.reasons[0].statement_ids


def test_twitch_response_confirms_but_is_not_required(clean: dict[str, Any], kb: Knowledge) -> None:
    for tp in clean["trigger_points"]:
        tp["local_twitch_response"] = False
    assert run(clean, kb).verdict == "tpi_appropriate"


def test_no_trigger_point_recorded(clean: dict[str, Any], kb: Knowledge) -> None:
    clean["trigger_points"] = []
    rec = run(clean, kb)
    assert rec.verdict == "insufficient_findings"
    assert codes(rec) == {"no_trigger_point_examined"}


def test_absolute_contraindications(clean: dict[str, Any], kb: Knowledge) -> None:
    # S002.16: bleeding disorders, injectate allergy, infection at the site, pregnancy
    for field in ("bleeding_disorder", "injectate_allergy", "infection_at_site"):
        data = example("ql_chronic_low_back")
        data["contraindications"][field] = True
        rec = run(data, kb)
        assert rec.verdict == "contraindicated", field
        assert "S002.16" in rec.reasons[0].statement_ids


def test_pregnancy_is_absolute_and_male_is_not_pregnant(kb: Knowledge) -> None:
    data = example("pregnancy")
    assert run(data, kb).verdict == "contraindicated"
    male = example("ql_chronic_low_back")
    assert "pregnant" not in male["patient"]
    assert not any(n.field == "patient.pregnant" for n in run(male, kb).needs)
    female = example("ql_chronic_low_back")
    female["patient"]["sex"] = "female"
    rec = run(female, kb)
    assert rec.verdict == "insufficient_findings"
    assert any(n.field == "patient.pregnant" for n in rec.needs)


def test_anticoagulant_is_a_caution_with_what_to_check(kb: Knowledge) -> None:
    rec = run(example("warfarin"), kb)
    assert rec.verdict == "tpi_appropriate"
    cautions = {c.code: c for c in rec.cautions}
    assert "anticoagulant" in cautions
    assert "INR" in cautions["anticoagulant"].action
    assert "S002.32" in cautions["anticoagulant"].statement_ids
    # a stopped clopidogrel order does not count
    assert "antiplatelet" not in cautions


def test_medication_class_from_name_or_explicit(clean: dict[str, Any], kb: Knowledge) -> None:
    clean["medications"] = [{"name": "Eliquis 5 mg"}]
    assert "anticoagulant" in {c.code for c in run(clean, kb).cautions}
    clean["medications"] = [{"name": "our formulary drug X", "drug_class": "antiplatelet"}]
    assert "antiplatelet" in {c.code for c in run(clean, kb).cautions}


def test_thoracic_and_neck_hazards_become_cautions(kb: Knowledge) -> None:
    rec = run(example("rhomboids_between_shoulder_blades"), kb)
    hz = {c.code: c for c in rec.cautions}
    assert "hazard.pleura" in hz
    assert "pneumothorax" in (hz["hazard.pleura"].text + hz["hazard.pleura"].action).lower()
    rec2 = run(example("levator_scapulae_on_apixaban"), kb)
    assert "hazard.cervical_nerve_roots" in {c.code for c in rec2.cautions}


def test_conservative_care_first_names_the_next_step(kb: Knowledge) -> None:
    rec = run(example("no_conservative_care_yet"), kb)
    assert rec.verdict == "conservative_care_first"
    assert rec.stepped_care.stage == 1
    assert rec.stepped_care.next_step.stage == 1
    data = example("no_conservative_care_yet")
    data["conservative_care"] = [{"modality": "heat", "weeks": 3, "response": "none"}]
    rec = run(data, kb)
    assert rec.verdict == "conservative_care_first"
    assert rec.stepped_care.stage == 2 and rec.stepped_care.next_step.stage == 2


def test_trial_shorter_than_policy_does_not_count(clean: dict[str, Any], kb: Knowledge) -> None:
    clean["conservative_care"] = [{"modality": "physical_therapy", "weeks": 1, "response": "none"}]
    assert run(clean, kb).verdict == "conservative_care_first"
    assert run(clean, kb, Policy(min_conservative_trial_weeks=1)).verdict == "tpi_appropriate"


def test_good_response_means_continue(kb: Knowledge) -> None:
    rec = run(example("conservative_care_helping"), kb)
    assert rec.verdict == "conservative_care_first"
    assert "continue" in rec.stepped_care.next_step.text.lower()


def test_unanswered_screens_are_needs_never_guesses(clean: dict[str, Any], kb: Knowledge) -> None:
    clean["red_flags"] = {}
    clean["medications"] = None
    rec = run(clean, kb)
    assert rec.verdict == "insufficient_findings"
    fields = {n.field for n in rec.needs if n.blocking}
    assert "red_flags.cauda_equina" in fields
    assert "medications[].drug_class" in fields or "medications" in str(fields)
    assert rec.reasons[0].code == "screening_incomplete"


def test_failure_risk_factors_are_cautions(clean: dict[str, Any], kb: Knowledge) -> None:
    # S004.04: constant pain, impact on daily activity, widespread pain, long duration
    clean["pain"].update(constant=True, daily_activity_impact="severe", duration_weeks=60)
    got = {c.code for c in run(clean, kb).cautions}
    assert {"risk_constant_pain", "risk_high_impact", "risk_long_duration"} <= got


@pytest.mark.parametrize(
    ("weeks", "phase", "smax"),
    [
        (0, "acute", 4),
        (5.9, "acute", 4),
        (6, "subacute", 4),
        (12, "subacute", 4),
        (12.1, "chronic", 8),
        (300, "chronic", 8),
    ],
)
def test_duration_phase_boundaries(
    weeks: float, phase: str, smax: int, clean: dict[str, Any], kb: Knowledge
) -> None:
    # acute < 6 weeks, subacute 6-12, chronic > 12 (van Tulder 2006); sessions per S000.20
    clean["pain"]["duration_weeks"] = weeks
    course = run(clean, kb).expected_course
    assert course.phase == phase and course.sessions_max == smax


def test_conflicts_are_shown_with_both_sources(clean: dict[str, Any], kb: Knowledge) -> None:
    rec = run(clean, kb)
    lido = next(c for c in rec.conflicts if c.id == "lidocaine-strength")
    assert {"S000.15", "S002.18"} <= set(lido.statement_ids)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["patient"].update(age_years=200), "patient.age_years"),
        (lambda d: d["pain"].update(nrs=14), "pain.nrs"),
        (lambda d: d["patient"].update(weight_kg=-3), "patient.weight_kg"),
        (lambda d: d["trigger_points"][0].update(muscle="biceps"), "trigger_points[0].muscle"),
        (lambda d: d.update(regions=["knee"]), "regions[0]"),
        (lambda d: d.update(surprise=True), "surprise"),
        (
            lambda d: d["conservative_care"][0].update(modality="crystals"),
            "conservative_care[0].modality",
        ),
        (lambda d: d["patient"].update(sex="male", pregnant=True), "patient.pregnant"),
    ],
)
def test_bad_input_names_the_field(
    mutate: Any, field: str, clean: dict[str, Any], kb: Knowledge
) -> None:
    mutate(clean)
    with pytest.raises(InvalidInput) as exc:
        parse_assessment(clean, kb)
    assert field in {p.field for p in exc.value.problems}, exc.value.problems
