"""Issue 12 §1 and §6: every recorded finding counts; contradictions are reported.

One safe base case (a fully screened chronic low back patient, TPI appropriate), one or
two changes each. Regions decide which screens must be *answered*; a positive finding
counts wherever it is recorded (S000.11: TPIs treat muscle pain only; S002.11: other
sources, visceral ones included, imitate trigger points and are worked up first).
"""

from __future__ import annotations

from typing import Any

import pytest

from triggerpath.domain.engine import assess
from triggerpath.domain.planning import parse_plan_request, plan_from_request
from triggerpath.domain.recommendation import Recommendation
from triggerpath.domain.validation import parse_assessment
from triggerpath.knowledge import Knowledge

from .conftest import AS_OF, example


def run(data: dict[str, Any], kb: Knowledge) -> Recommendation:
    return assess(parse_assessment(data, kb), kb, as_of=AS_OF)


def plan_status(data: dict[str, Any], kb: Knowledge, **extra: Any) -> str:
    req = parse_plan_request(
        {
            "assessment": data,
            "targets": [{"muscle": "quadratus_lumborum", "side": "right", "sites": 2}],
            "injectate": {"solutions": [{"agent": "lidocaine", "percent": 0.5}]},
            **extra,
        },
        kb,
    )
    return plan_from_request(req, kb, as_of=AS_OF).status


def test_base_case_is_appropriate_and_ready(clean: dict[str, Any], kb: Knowledge) -> None:
    assert run(clean, kb).verdict == "tpi_appropriate"
    assert plan_status(clean, kb) == "ready"


# (regions, path of the positive finding, value, expected redirect)
OUTSIDE = [
    (["pelvic_girdle"], ("facet", "medial_branch_block_positive"), True, "medial_branch_block"),
    (["mid_back"], ("radicular", "pain_below_knee"), True, "epidural_steroid_injection"),
    (
        ["mid_back"],
        ("radicular", "positive_straight_leg_raise"),
        True,
        "epidural_steroid_injection",
    ),
    (["low_back"], ("upper_back_mimics", "visceral_referral"), True, "other_source_evaluation"),
    (["low_back"], ("upper_back_mimics", "thoracic_outlet"), True, "other_source_evaluation"),
    (["neck"], ("sacroiliac", "sacroiliac_block_positive"), True, "sacroiliac_evaluation"),
    (["pelvic_girdle"], ("discogenic", "discography_positive"), True, "discogenic_evaluation"),
]


def _regions_case(clean: dict[str, Any], regions: list[str]) -> dict[str, Any]:
    """The base case with other regions and a trigger point that belongs to them."""
    clean["regions"] = regions
    muscle = {
        "pelvic_girdle": "gluteus_medius",
        "mid_back": "iliocostalis_thoracis",
        "neck": "upper_trapezius",
        "low_back": "quadratus_lumborum",
    }[regions[0]]
    clean["trigger_points"] = [
        {**clean["trigger_points"][0], "muscle": muscle, "side": "right"},
    ]
    return clean


@pytest.mark.parametrize(("regions", "where", "value", "redirect"), OUTSIDE)
def test_a_positive_outside_the_listed_regions_is_never_dropped(
    clean: dict[str, Any],
    kb: Knowledge,
    regions: list[str],
    where: tuple[str, str],
    value: Any,
    redirect: str,
) -> None:
    data = _regions_case(clean, regions)
    baseline = run(data, kb)
    group, name = where
    data["pain_generators"][group][name] = value
    rec = run(data, kb)
    assert baseline.verdict != "not_indicated"
    assert rec.verdict == "not_indicated"
    assert redirect in rec.redirects
    field = f"pain_generators.{group}.{name}"
    hit = [r for r in rec.reasons if field in r.fields]
    assert hit, rec.reasons
    # reported as such: the screen's own regions and a need to confirm the listed ones
    assert "regions" in {n.field for n in rec.needs}
    assert "listed regions" in hit[0].text and "S002.11" in hit[0].statement_ids
    req = {
        "assessment": data,
        "targets": [{"muscle": data["trigger_points"][0]["muscle"], "side": "right"}],
        "injectate": {"solutions": [{"agent": "lidocaine", "percent": 0.5}]},
    }
    plan = plan_from_request(parse_plan_request(req, kb), kb, as_of=AS_OF)
    assert plan.status == "refused"


def test_issue_example_facet_signs_with_pelvic_girdle(kb: Knowledge) -> None:
    """The issue's case: same verdict and redirect as with low_back listed."""
    data = example("ql_chronic_low_back")
    data["regions"] = ["pelvic_girdle"]
    data["trigger_points"] = [data["trigger_points"][1]]  # gluteus medius
    data["pain_generators"]["facet"]["medial_branch_block_positive"] = True
    data["pain_generators"]["facet"]["extension_rotation_pain"] = True
    data["pain_generators"]["facet"]["facet_tenderness"] = True
    pelvic = run(data, kb)
    data["regions"] = ["low_back"]
    low = run(data, kb)
    assert (pelvic.verdict, pelvic.redirect) == (low.verdict, low.redirect)
    assert pelvic.redirect == "medial_branch_block"


def test_unanswered_screens_of_unlisted_regions_are_not_needs(
    clean: dict[str, Any], kb: Knowledge
) -> None:
    """Regions still decide which screens must be answered (no flood of needs)."""
    clean["pain_generators"]["upper_back_mimics"] = {}
    rec = run(clean, kb)
    assert rec.verdict == "tpi_appropriate"
    assert not any(n.field.startswith("pain_generators.upper_back") for n in rec.needs)


def test_an_in_region_positive_is_not_reported_twice(clean: dict[str, Any], kb: Knowledge) -> None:
    """Dermatomal pain fits both radicular screens; one reason, the region's own."""
    clean["pain_generators"]["radicular"]["dermatomal_pain"] = True
    rec = run(clean, kb)
    assert [r.code for r in rec.reasons] == ["pain_generator.radicular_lumbar"]
    assert "regions" not in {n.field for n in rec.needs}


@pytest.mark.parametrize(
    "flag",
    ["cauda_equina", "suspected_malignancy", "suspected_infection", "suspected_fracture"],
)
@pytest.mark.parametrize("regions", [["neck"], ["pelvic_girdle"], ["mid_back", "upper_back"]])
def test_red_flags_count_whatever_the_regions(
    clean: dict[str, Any], kb: Knowledge, flag: str, regions: list[str]
) -> None:
    data = _regions_case(clean, regions)
    data["red_flags"][flag] = True
    assert run(data, kb).verdict == "urgent_referral"


@pytest.mark.parametrize("regions", [["neck"], ["pelvic_girdle"], ["mid_back"]])
def test_contraindications_count_whatever_the_regions(
    clean: dict[str, Any], kb: Knowledge, regions: list[str]
) -> None:
    data = _regions_case(clean, regions)
    data["contraindications"]["bleeding_disorder"] = True
    assert run(data, kb).verdict == "contraindicated"


# --------------------------------------------------------------------------- §6 consistency
@pytest.mark.parametrize(("trial", "duration"), [(30, 20), (8, 4), (52.5, 52)])
def test_trial_longer_than_the_pain_is_a_blocking_need(
    clean: dict[str, Any], kb: Knowledge, trial: float, duration: float
) -> None:
    clean["pain"]["duration_weeks"] = duration
    clean["conservative_care"][1]["weeks"] = trial
    rec = run(clean, kb)
    assert rec.verdict == "insufficient_findings"
    need = {n.field: n for n in rec.needs}["conservative_care[1].weeks"]
    assert need.blocking and "longer than the pain" in need.why


def test_trial_as_long_as_the_pain_is_consistent(clean: dict[str, Any], kb: Knowledge) -> None:
    clean["pain"]["duration_weeks"] = 8
    assert run(clean, kb).verdict == "tpi_appropriate"


def test_no_pain_now_is_a_caution_the_plan_waits_for(clean: dict[str, Any], kb: Knowledge) -> None:
    clean["pain"]["nrs"] = 0
    rec = run(clean, kb)
    assert "no_pain_now" in {c.code for c in rec.cautions}
    assert plan_status(clean, kb) == "needs_acknowledgement"
    assert plan_status(clean, kb, acknowledged_cautions=["no_pain_now"]) == "ready"


def test_nrs_one_is_no_contradiction(clean: dict[str, Any], kb: Knowledge) -> None:
    clean["pain"]["nrs"] = 1
    assert "no_pain_now" not in {c.code for c in run(clean, kb).cautions}


@pytest.mark.parametrize(
    ("muscle", "regions"),
    [("rhomboid_major", ["low_back"]), ("upper_trapezius", ["pelvic_girdle"])],
)
def test_trigger_point_outside_the_listed_regions_needs_the_regions_confirmed(
    clean: dict[str, Any], kb: Knowledge, muscle: str, regions: list[str]
) -> None:
    clean["regions"] = regions
    clean["trigger_points"] = [{**clean["trigger_points"][0], "muscle": muscle}]
    rec = run(clean, kb)
    assert rec.verdict == "insufficient_findings"
    assert "trigger_points[0].muscle" in {n.field for n in rec.needs if n.blocking}
