"""The treatment course: response, every course flag, the failure worksheet, ablation decision."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triggerpath.domain.course import CourseReport, evaluate_course, parse_episode, session_response
from triggerpath.domain.episode import MedialBranchBlock
from triggerpath.domain.policy import Policy
from triggerpath.domain.reevaluation import ablation_decision
from triggerpath.errors import InvalidInput
from triggerpath.knowledge import Knowledge, load_knowledge

from .conftest import AS_OF, ROOT, example

COURSES = ROOT / "examples" / "courses"
EXPECTED = json.loads((COURSES / "expected.json").read_text())
START = date(2026, 9, 1)


def session(day: int, pre: int = 7, post: int | None = 3, **extra: Any) -> dict[str, Any]:
    """A session ``day`` days after START; by default a responder with PT and home exercise."""
    base: dict[str, Any] = {
        "date": (START + timedelta(days=day)).isoformat(),
        "pre_nrs": pre,
        "post_nrs": post,
        "relief_duration_days": 21 if post is not None else None,
        "physical_therapy": True,
        "home_exercise": True,
    }
    return base | extra


def episode(sessions: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """The chronic QL patient (20 weeks, 2-8 sessions) with the given sessions."""
    return {"assessment": example("ql_chronic_low_back"), "sessions": sessions} | extra


def run(
    data: dict[str, Any], kb: Knowledge, *, as_of: date = AS_OF, policy: Policy | None = None
) -> CourseReport:
    ep = parse_episode(data, kb, as_of=as_of)
    return evaluate_course(ep, kb, as_of=as_of, policy=policy or Policy())


def codes(report: CourseReport) -> list[str]:
    return [w.code for w in report.warnings]


def note_codes(report: CourseReport) -> list[str]:
    return [n.code for n in report.notes]


# --------------------------------------------------------------------------- response
@pytest.mark.parametrize(
    ("pre", "post", "days", "expected"),
    [
        (10, 5, 21, "responder"),  # 50%: substantial (IMMPACT, Dworkin 2008)
        (10, 6, 21, "partial"),  # 40%
        (10, 7, 21, "partial"),  # exactly 30%: moderately important
        (10, 8, 21, "non_responder"),  # 20%
        (7, 5, 21, "non_responder"),  # 28.6%: 2 points, but the percentage decides
        (5, 7, 21, "non_responder"),  # worse
        (8, 2, 13, "relief_too_short"),  # 75%, but under the 14 days of the default policy
        (8, 2, 14, "responder"),  # 14 days is enough
        (8, 5, 3, "relief_too_short"),  # 37.5% for 3 days
    ],
)
def test_session_response_immpact_thresholds(
    pre: int, post: int, days: int, expected: str, kb: Knowledge
) -> None:
    """Dworkin RH et al. J Pain 2008;9:105-21: >= 30% moderately important, >= 50% substantial."""
    cls, pct, text = session_response(pre, post, days, kb)
    assert cls == expected
    assert pct == pytest.approx((pre - post) * 100 / pre)
    assert f"NRS {pre} → {post}" in text


def test_response_needs_follow_up_and_a_baseline(kb: Knowledge) -> None:
    assert session_response(7, None, None, kb)[0] is None
    assert session_response(0, 0, 30, kb)[0] is None  # no pain before: no judgement
    # relief duration unknown: classified by the change, and the duration is asked for
    report = run(episode([session(0, 8, 2, relief_duration_days=None)]), kb)
    assert report.response.classification == "responder"
    assert "sessions[0].relief_duration_days" in {n.field for n in report.needs}


def test_policy_min_relief_days_moves_the_class(kb: Knowledge) -> None:
    assert session_response(8, 2, 10, kb)[0] == "relief_too_short"
    assert session_response(8, 2, 10, kb, Policy(min_relief_days=7))[0] == "responder"


def test_course_takes_the_latest_scored_session(kb: Knowledge) -> None:
    data = episode([session(0, 8, 2), session(21, 6, 5), session(42, 6, None)])
    report = run(data, kb)
    assert report.response.classification == "non_responder"  # session 2, 6 -> 5
    assert report.response.based_on_session == 2
    assert report.response.baseline_nrs == 8 and report.response.latest_nrs == 5
    assert report.response.change_pct == pytest.approx(37.5)
    assert report.sessions[2].response is None
    assert "sessions[2].post_nrs" in {n.field for n in report.needs}


@settings(deadline=None, max_examples=300)
@given(pre=st.integers(1, 10), post=st.integers(0, 10), days=st.integers(0, 120))
def test_response_classes_match_the_thresholds(pre: int, post: int, days: int) -> None:
    kb = load_knowledge()
    cls, pct, _ = session_response(pre, post, days, kb)
    assert pct is not None
    if pct < 30:
        assert cls == "non_responder"
    elif days < 14:
        assert cls == "relief_too_short"
    else:
        assert cls == ("responder" if pct >= 50 else "partial")


# --------------------------------------------------------------------------- session limits
def _n_sessions(n: int, spacing: int = 7) -> list[dict[str, Any]]:
    return [session(i * spacing) for i in range(n)]


@pytest.mark.parametrize(
    ("weeks", "n", "flag"),
    [
        (20, 1, None),
        (20, 6, None),
        (20, 7, "session_limit_near"),  # chronic 2-8 (S000.20): one left
        (20, 8, "session_limit_reached"),
        (20, 9, "session_limit_exceeded"),
        (3, 2, None),
        (3, 3, "session_limit_near"),  # acute 1-4
        (3, 4, "session_limit_reached"),
        (8, 5, "session_limit_exceeded"),  # subacute 1-4
    ],
)
def test_session_count_against_the_phase(
    weeks: int, n: int, flag: str | None, kb: Knowledge
) -> None:
    data = episode(_n_sessions(n, spacing=4), reassessments=["2026-09-20"])
    data["assessment"]["pain"]["duration_weeks"] = weeks
    report = run(data, kb)
    limit_flags = [c for c in codes(report) if c.startswith("session_limit")]
    assert limit_flags == ([flag] if flag else [])
    assert report.course.done == n
    if flag:
        warning = next(w for w in report.warnings if w.code == flag)
        assert "S000.20" in warning.statement_ids


def test_plan_beyond_the_range_and_unknown_phase(kb: Knowledge) -> None:
    report = run(episode([session(0)], plan={"planned_sessions": 10}), kb)
    assert "plan_exceeds_limit" in codes(report)
    data = episode([session(0)])
    data["assessment"]["pain"]["duration_weeks"] = None
    report = run(data, kb)
    assert "phase_unknown" in codes(report)
    assert report.course.sessions_max is None
    assert "assessment.pain.duration_weeks" in {n.field for n in report.needs}


# --------------------------------------------------------------------------- reassessment
@pytest.mark.parametrize(
    ("as_of", "reassessed", "status"),
    [
        (date(2026, 9, 10), [], "upcoming"),  # day 9
        (date(2026, 9, 15), [], "due"),  # day 14: the 2-week point (S003.12)
        (date(2026, 9, 29), [], "due"),  # day 28: the 4-week point
        (date(2026, 9, 30), [], "overdue"),  # day 29
        (date(2026, 10, 30), ["2026-09-16"], "done"),
        (date(2026, 10, 30), ["2026-09-08"], "overdue"),  # before the window: does not count
    ],
)
def test_reassessment_two_to_four_weeks_after_start(
    as_of: date, reassessed: list[str], status: str, kb: Knowledge
) -> None:
    report = run(episode([session(0)], reassessments=reassessed), kb, as_of=as_of)
    ra = report.reassessment
    assert ra.status == status
    assert (ra.due_from, ra.due_by) == (date(2026, 9, 15), date(2026, 9, 29))
    flags = {"due": "reassessment_due", "overdue": "reassessment_overdue"}
    if status in flags:
        assert flags[status] in codes(report)
    else:
        assert not {"reassessment_due", "reassessment_overdue"} & set(codes(report))
        assert f"reassessment_{status}" in note_codes(report)


# --------------------------------------------------------------------------- comprehensive care
def test_monotherapy_warning_when_no_pt_or_home_exercise(kb: Knowledge) -> None:
    data = episode(
        [
            session(0, physical_therapy=None, home_exercise=None),
            session(14, physical_therapy=False, home_exercise=False),
        ],
        reassessments=["2026-09-15"],
    )
    report = run(data, kb)
    warning = next(w for w in report.warnings if w.code == "monotherapy")
    assert "S000.25" in warning.statement_ids
    assert "none recorded in the whole course" in warning.text
    assert "sessions[0].physical_therapy" in warning.fields
    assert "conservative_care_lapsed" not in codes(report)


def test_home_exercise_alone_is_not_monotherapy(kb: Knowledge) -> None:
    data = episode([session(0, physical_therapy=False, home_exercise=True)])
    assert "monotherapy" not in codes(run(data, kb, as_of=date(2026, 9, 5)))


def test_lapsed_conservative_care_is_flagged(kb: Knowledge) -> None:
    data = episode(
        [session(0), session(14, physical_therapy=None, home_exercise=False)],
        reassessments=["2026-09-15"],
    )
    report = run(data, kb)
    assert "conservative_care_lapsed" in codes(report)
    assert "monotherapy" not in codes(report)
    lapsed = next(w for w in report.warnings if w.code == "conservative_care_lapsed")
    assert "S000.26" in lapsed.statement_ids
    # keep conservative care going is always said (S000.26)
    assert "continue_conservative_care" in note_codes(report)


# --------------------------------------------------------------------------- long-term use
def test_repeated_tpis_over_the_long_term_are_flagged(kb: Knowledge) -> None:
    short = episode([session(0), session(84)], reassessments=["2026-09-20"])  # 12 weeks
    later = date(2027, 1, 15)
    assert "long_term_repeated_tpis" not in codes(run(short, kb, as_of=later))
    long = episode([session(0), session(91)], reassessments=["2026-09-20"])  # 13 weeks
    report = run(long, kb, as_of=later)
    warning = next(w for w in report.warnings if w.code == "long_term_repeated_tpis")
    assert {"S000.01", "S000.02"} <= set(warning.statement_ids)
    relaxed = Policy(long_term_course_weeks=20)
    assert "long_term_repeated_tpis" not in codes(run(long, kb, as_of=later, policy=relaxed))


def test_more_sessions_than_planned_is_long_term_too(kb: Knowledge) -> None:
    data = episode(_n_sessions(9, spacing=3), reassessments=["2026-09-20"])
    report = run(data, kb)
    assert {"session_limit_exceeded", "long_term_repeated_tpis"} <= set(codes(report))


# --------------------------------------------------------------------------- other flags
def test_complications(kb: Knowledge) -> None:
    data = episode([session(0, complications=["pneumothorax", "soreness"])])
    report = run(data, kb, as_of=date(2026, 9, 5))
    warning = next(w for w in report.warnings if w.code == "complication.pneumothorax")
    assert "S000.30" in warning.statement_ids
    assert warning.fields == ["sessions[0].complications[0]"]
    assert "complication_expected" in note_codes(report)


def test_assessment_that_does_not_support_tpis(kb: Knowledge) -> None:
    data = episode([session(0)])
    data["assessment"]["contraindications"]["infection_at_site"] = True
    report = run(data, kb, as_of=date(2026, 9, 5))
    assert report.assessment.verdict == "contraindicated"
    warning = next(w for w in report.warnings if w.code == "assessment_not_tpi")
    assert "S002.16" in warning.statement_ids


def test_instrument_region_and_trends(kb: Knowledge) -> None:
    data = episode(
        [
            session(0, odi=[3, 3, 3, 3, 3, 3, 3, 3, 3, 3], ndi=[1] * 10),
            session(21, odi=[1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
        ],
        reassessments=["2026-09-20"],
    )
    report = run(data, kb)
    odi = next(o for o in report.outcomes if o.instrument == "odi")
    assert (odi.first, odi.latest, odi.change) == (60.0, 20.0, -40.0)
    assert (odi.first_band, odi.latest_band) == ("severe", "minimal")
    assert "instrument_region" in note_codes(report)  # NDI for a low back patient


def test_every_warning_and_note_cites_statements(kb: Knowledge) -> None:
    for path in sorted(COURSES.glob("*.json")):
        if path.name == "expected.json":
            continue
        report = run(json.loads(path.read_text()), kb)
        assert all(w.statement_ids for w in report.warnings), path.name
        assert all(n.statement_ids for n in report.notes), path.name
        assert report.response.statement_ids and report.course.statement_ids
        for s in report.sessions:
            assert s.statement_ids


# --------------------------------------------------------------------------- worksheet
def failing(**extra: Any) -> dict[str, Any]:
    return episode(
        [
            session(0, 7, 6, relief_duration_days=3, twitch_elicited=False),
            session(21, 7, 6, relief_duration_days=3, guidance="palpation",
                    muscles=["quadratus_lumborum"], volume_ml_per_point=0.3),
        ],
        reassessments=["2026-09-20"],
        **extra,
    )  # fmt: skip


def test_no_worksheet_while_responding(kb: Knowledge) -> None:
    report = run(episode([session(0), session(21)], reassessments=["2026-09-20"]), kb)
    assert report.reevaluation is None
    assert "reevaluate" not in codes(report)


def test_non_response_opens_the_worksheet(kb: Knowledge) -> None:
    report = run(failing(), kb)
    assert report.response.classification == "non_responder"
    assert "reevaluate" in codes(report)
    ws = report.reevaluation
    assert ws is not None
    assert {"S000.31", "S004.05"} <= set(ws.statement_ids)
    assert ws.opened_because[0].code == "course.non_responder"
    tech = {c.id: c for c in ws.technical_review}
    assert set(tech) == {"localisation", "guidance", "volume", "injectate"}
    assert tech["localisation"].status == "flagged"  # no twitch response (S004.02)
    assert tech["guidance"].status == "flagged"  # deep QL by palpation (S000.18)
    assert tech["volume"].status == "flagged"  # 0.3 mL is under 0.5-1 mL (S003.07)
    assert tech["injectate"].status == "not_recorded"
    assert {"S004.02"} <= set(tech["volume"].statement_ids)


def test_relief_too_short_and_partial_at_the_limit_open_it(kb: Knowledge) -> None:
    short = episode([session(0, 8, 2, relief_duration_days=5)])
    report = run(short, kb, as_of=date(2026, 9, 10))
    assert report.response.classification == "relief_too_short"
    assert report.reevaluation is not None
    # partial after the last of 1-4 sessions (subacute): symptoms persist
    data = episode([session(i * 7, 10, 6) for i in range(4)], reassessments=["2026-09-20"])
    data["assessment"]["pain"]["duration_weeks"] = 8
    report = run(data, kb)
    assert report.response.classification == "partial"
    assert report.reevaluation is not None
    assert report.reevaluation.opened_because[0].code == "course.partial_at_limit"
    # the same partial response earlier in the course does not open it yet
    data["sessions"] = data["sessions"][:2]
    assert run(data, kb).reevaluation is None


def test_worksheet_factors_and_differential(kb: Knowledge) -> None:
    data = failing()
    a = data["assessment"]
    a["pain"]["constant"] = True
    a["pain"]["daily_activity_impact"] = "severe"
    a["pain"]["widespread"] = None
    a["pain_generators"]["radicular"]["dermatomal_pain"] = True
    a["medications"].append({"name": "gabapentin 300 mg", "active": True})
    report = run(data, kb)
    ws = report.reevaluation
    assert ws is not None
    risks = {r.id: r.status for r in ws.failure_risk_factors}
    assert risks == {
        "constant_pain": "present",
        "high_impact": "present",
        "widespread_pain": "unknown",
        "long_duration": "absent",
    }
    perpetuating = {p.id: p.status for p in ws.perpetuating_factors}
    assert perpetuating["posture"] == "present"  # causes: posture
    assert perpetuating["ergonomics"] == "present"  # repetitive microtrauma
    assert perpetuating["joint_instability"] == "absent"
    dd = {d.id: d for d in ws.differential}
    assert dd["radicular"].status == "suspected"
    assert dd["radicular"].fields == ["pain_generators.radicular.dermatomal_pain"]
    assert any("MRI" in step for step in dd["radicular"].workup)
    assert any("EMG" in step for step in dd["radicular"].workup)
    assert "Epidural steroid injection" in dd["radicular"].treatment
    assert dd["facet"].workup == [
        "Diagnostic medial branch blocks (record the % relief of each block)"
    ]
    assert "Radiofrequency ablation" in dd["facet"].treatment
    assert {"sacroiliac", "discogenic", "tendon", "systemic", "structural"} <= set(dd)
    assert "upper_back_mimic" not in dd  # low back only
    assert all(d.workup and d.statement_ids for d in ws.differential)
    # the assessment itself now redirects, and says so
    assert "assessment_not_tpi" in codes(report)
    alts = {x.id: x for x in ws.alternatives}
    assert set(alts) >= {
        "intensified_physical_therapy",
        "dry_needling",
        "occupational_therapy",
        "medication_change",
        "interdisciplinary_rehabilitation",
    }
    assert alts["medication_change"].already_taking == ["gabapentin 300 mg"]
    assert "S004.08" in alts["medication_change"].statement_ids
    assert alts["interdisciplinary_rehabilitation"].highlighted
    assert alts["non_muscular_procedures"].highlighted  # radicular suspected


def test_startback_high_risk_is_a_perpetuating_factor(kb: Knowledge) -> None:
    report = run(failing(startback=[0, 0, 0, 0, 1, 1, 1, 1, 0]), kb)
    assert report.startback is not None and report.startback.band == "high"
    assert report.reevaluation is not None
    psych = next(p for p in report.reevaluation.perpetuating_factors if p.id == "psychosocial")
    assert psych.status == "present"


def test_neck_worksheet_lists_upper_back_mimics(kb: Knowledge) -> None:
    data = {
        "assessment": example("upper_trapezius_tension_headache"),
        "sessions": [session(0, 6, 6, relief_duration_days=0)],
    }
    report = run(data, kb, as_of=date(2026, 9, 10))
    assert report.reevaluation is not None
    dd = {d.id for d in report.reevaluation.differential}
    assert "upper_back_mimic" in dd and "sacroiliac" not in dd


# --------------------------------------------------------------------------- ablation
@pytest.mark.parametrize(
    ("blocks", "decision"),
    [
        ([], "no_blocks"),
        ([50.0], "not_supported"),  # S000.32: MORE than 50%
        ([50.1], "supported"),
        ([90.0, 40.0], "not_supported"),  # a negative block counts against
        ([51.0, 75.0], "supported"),
    ],
)
def test_ablation_seed_rule_more_than_50(blocks: list[float], decision: str, kb: Knowledge) -> None:
    result = ablation_decision(blocks, Policy(), knowledge=kb)
    assert result.decision == decision
    assert result.supported is (decision == "supported")
    assert (result.threshold_pct, result.comparison, result.blocks_required) == (50, ">", 1)
    assert "S000.32" in result.statement_ids
    assert "80%" in result.other_rule  # the payer rule is named


@pytest.mark.parametrize(
    ("blocks", "decision"),
    [
        ([80.0], "needs_another_block"),
        ([80.0, 80.0], "supported"),  # at least 80%: 80 itself qualifies
        ([79.9, 95.0], "not_supported"),
        ([60.0, 70.0], "not_supported"),  # enough for the seed rule, not for the payer
    ],
)
def test_ablation_payer_rule_two_blocks_80(
    blocks: list[float], decision: str, kb: Knowledge
) -> None:
    result = ablation_decision(blocks, Policy(rfa_rule="dual_block_80"), knowledge=kb)
    assert result.decision == decision
    assert (result.threshold_pct, result.comparison, result.blocks_required) == (80, "≥", 2)
    assert result.references  # the payer rule names its source


def test_ablation_policy_switch_in_the_course(kb: Knowledge) -> None:
    data = failing(medial_branch_blocks=[{"date": "2026-10-15", "relief_pct": 60}])
    assert run(data, kb).ablation is not None
    seed = run(data, kb).ablation
    payer = run(data, kb, policy=Policy(rfa_rule="dual_block_80")).ablation
    assert seed is not None and payer is not None
    assert seed.decision == "supported"
    assert payer.decision == "not_supported"
    assert run(failing(), kb).ablation is None  # no blocks entered: no decision shown


def test_ablation_accepts_records_and_refuses_bad_percentages(kb: Knowledge) -> None:
    block = MedialBranchBlock(date=date(2026, 10, 1), level="L4-L5", relief_pct=70)
    assert ablation_decision([block], knowledge=kb).blocks[0].level == "L4-L5"
    with pytest.raises(InvalidInput) as exc:
        ablation_decision([120.0], knowledge=kb)
    assert exc.value.problems[0].field == "medial_branch_blocks[0].relief_pct"


# --------------------------------------------------------------------------- input
def test_bad_episode_names_every_field(kb: Knowledge) -> None:
    data = episode(
        [
            session(10, odi=[0, 0, 0, 7, 0, 0, 0, 0, 0, 0], complications=["gremlins"]),
            session(5, muscles=["biceps"]),
            session(400),
        ],
        startback=[1, 1, 1],
    )
    data["assessment"]["pain"]["nrs"] = 14
    with pytest.raises(InvalidInput) as exc:
        run(data, kb)
    assert exc.value.problems[0].field == "assessment.pain.nrs"  # schema problems first
    data["assessment"]["pain"]["nrs"] = 6
    with pytest.raises(InvalidInput) as exc:
        run(data, kb)
    found = {p.field: p.reason for p in exc.value.problems}
    assert found["sessions[0].odi[3]"].startswith("7 is out of range 0-5")
    assert "unknown complication 'gremlins'" in found["sessions[0].complications[0]"]
    assert "must be after the previous session" in found["sessions[1].date"]
    assert "unknown muscle 'biceps'" in found["sessions[1].muscles[0]"]
    assert "is after" in found["sessions[2].date"]  # after as_of
    assert "startback" in found


# --------------------------------------------------------------------------- examples
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_course_example_reaches_its_expected_result(name: str, kb: Knowledge) -> None:
    report = run(json.loads((COURSES / f"{name}.json").read_text()), kb)
    want = EXPECTED[name]
    assert report.assessment.verdict == "tpi_appropriate"
    assert report.response.classification == want["response"], report.response.text
    assert (report.reevaluation is not None) == want["reevaluation"]
    assert codes(report) == want["warnings"]
    assert report.reassessment.status == want["reassessment"]
    assert (report.ablation.decision if report.ablation else None) == want["ablation"]


def test_every_course_example_has_an_expectation() -> None:
    files = {p.stem for p in Path(COURSES).glob("*.json")} - {"expected"}
    assert files == set(EXPECTED)
    assert any(e["reevaluation"] for e in EXPECTED.values())  # a failing course
    assert any("session_limit_reached" in e["warnings"] for e in EXPECTED.values())


def test_planner_targets_feed_the_technical_review(kb: Knowledge) -> None:
    """The planner's targets (muscle, side, sites, volume_ml_per_site) are read when present."""
    target = {"muscle": "quadratus_lumborum", "side": "right", "sites": 2}
    data = failing(
        plan={"targets": [target | {"volume_ml_per_site": 0.3}], "guidance": "palpation"}
    )
    for s in data["sessions"]:
        s.pop("volume_ml_per_point", None)
        s.pop("muscles", None)
        s.pop("guidance", None)
    report = run(data, kb)
    assert report.reevaluation is not None
    tech = {c.id: c for c in report.reevaluation.technical_review}
    assert tech["volume"].status == "flagged"  # 0.3 mL per site under QL's 0.5 mL
    assert tech["guidance"].status == "flagged"  # QL by palpation, from the plan
    data["plan"]["targets"] = [target | {"muscle": "biceps"}]
    with pytest.raises(InvalidInput) as exc:
        run(data, kb)
    assert exc.value.problems[0].field == "plan.targets[0].muscle"
