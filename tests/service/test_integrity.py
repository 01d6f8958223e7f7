"""The safety kernel through the REST API, on SQLite and PostgreSQL (issue 11 §1-§3,
issue 14 §7 and §10).

Every refusal is checked three ways: 422 problem details naming the field and the rule,
nothing stored (the list under the parent is unchanged), and one audit event with the
outcome ``invalid``.

Dose figures: plain lidocaine for the 84 kg, 178 cm man of examples/plans under the
conservative default policy: the lower of 4.5 mg/kg x lean body weight (Janmahasatian
2005: 9270 x 84 / (6680 + 216 x 26.51) = 62.8 kg, so 282 mg; US FDA label 4.5 mg/kg) and
the lowest cap, 200 mg (BNF, lidocaine hydrochloride for infiltration); with no 24-hour
maximum in the sources, earlier doses count against that single-dose maximum. So the
day's plain lidocaine may total 200 mg. 1 % w/v = 10 mg/mL.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from triggerpath.services.model import NextVersion

from .conftest import PASSWORD, Service, plan_body

PLANS = Path(__file__).resolve().parents[2] / "examples" / "plans"
ASSESSMENTS = Path(__file__).resolve().parents[2] / "examples" / "assessments"


def _plan_assessment(name: str = "ql_low_back_ok") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PLANS / f"{name}.json").read_text(encoding="utf-8"))
    assessment: dict[str, Any] = data["assessment"]
    return assessment


def _episode_with_assessment(service: Service, assessment: dict[str, Any] | None = None) -> Any:
    patient = service.patient()
    episode = service.episode(patient["id"])
    body = {"input": assessment or _plan_assessment()}
    a = service.ok(service.post(f"/api/v1/episodes/{episode['id']}/assessments", json=body))
    return patient, episode, a


def _refused(service: Service, r: Any, mark: int, action: str) -> dict[str, Any]:
    """422 problem details from the kernel, with exactly one 'invalid' audit event."""
    assert r.status_code == 422, r.text
    body: dict[str, Any] = r.json()
    assert body["errors"], body
    events = [e for e in service.events_after(mark) if e.request_id == r.headers["x-request-id"]]
    assert [(e.action, e.outcome) for e in events] == [(action, "invalid")]
    return body


def _rules(body: dict[str, Any]) -> set[str]:
    return {e.get("rule") for e in body["errors"]}


def _site(agent: str = "lidocaine", percent: float = 1.0, ml: float = 1.0) -> dict[str, Any]:
    return {
        "muscle": "quadratus_lumborum",
        "side": "right",
        "agent": agent,
        "concentration_percent": percent,
        "volume_ml": ml,
    }


def _ago(hours: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).isoformat()


def _count(service: Service, url: str) -> int:
    total: int = service.get(url).json()["total"]
    return total


# --------------------------------------------------------------------------- §1 plans
def test_the_ready_example_plan_is_stored_as_the_planners_output(service: Service) -> None:
    _, _, a = _episode_with_assessment(service)
    body = plan_body("ql_low_back_ok")
    r = service.post(f"/api/v1/assessments/{a['id']}/plans", json=body)
    plan = service.ok(r)
    assert r.headers["etag"] == '"1"'
    data = plan["data"]
    assert plan["plan_status"] == "ready" and data["result"]["status"] == "ready"
    # 3 + 2 sites x 1 mL of lidocaine 1 % diluted 1:1 = 2.5 mL x 10 mg/mL = 25 mg
    assert data["result"]["dose"]["agents"][0]["mg"] == 25
    assert data["input"] == {**body, "planned_for": None, "note": None}
    assert data["knowledge_version"] and data["policy"]["dose_weight_basis"] == "lean"
    assert data["ledger"] == [] and data["stale"] is False
    assert {s["muscle"] for s in data["sites"]} == {"quadratus_lumborum", "gluteus_medius"}


def test_plans_the_planner_does_not_pass_are_refused_and_nothing_is_stored(
    service: Service,
) -> None:
    _, _, a = _episode_with_assessment(service)
    url = f"/api/v1/assessments/{a['id']}/plans"
    # 600 mg plain lidocaine: 30 sites x 1 mL of 2 % = 30 mL x 20 mg/mL, over 200 mg
    over = {
        **plan_body(),
        "targets": [
            {"muscle": "quadratus_lumborum", "side": "right", "sites": 15},
            {"muscle": "gluteus_medius", "side": "right", "sites": 15},
        ],
        "injectate": {"solutions": [{"agent": "lidocaine", "percent": 2}], "saline_parts": 0},
    }
    mark = service.watermark()
    body = _refused(service, service.post(url, json=over), mark, "plan.create")
    assert _rules(body) == {"plan.not_ready"}
    assert any("blocked" in e["reason"] for e in body["errors"])
    assert all(e["statement_ids"] for e in body["errors"])
    # 40 sites of lidocaine 10 % (not a marketed strength; 20 g would be far over any limit)
    forty = {
        **plan_body(),
        "targets": [
            {"muscle": "quadratus_lumborum", "side": "right", "sites": 20},
            {"muscle": "gluteus_medius", "side": "right", "sites": 20},
        ],
        "injectate": {"solutions": [{"agent": "lidocaine", "percent": 10}], "saline_parts": 0},
    }
    mark = service.watermark()
    body = _refused(service, service.post(url, json=forty), mark, "plan.create")
    assert "injectate.solutions[0].percent" in {e["field"] for e in body["errors"]}
    assert _count(service, url) == 0


def test_a_plan_for_an_urgent_referral_is_refused(service: Service) -> None:
    cauda = json.loads((ASSESSMENTS / "cauda_equina_signs.json").read_text(encoding="utf-8"))
    _, _, a = _episode_with_assessment(service, cauda)
    assert a["verdict"] == "urgent_referral"
    url = f"/api/v1/assessments/{a['id']}/plans"
    mark = service.watermark()
    body = _refused(service, service.post(url, json=plan_body()), mark, "plan.create")
    assert _rules(body) == {"plan.not_ready"}
    assert all(e["reason"].startswith("refused") for e in body["errors"])
    assert _count(service, url) == 0


def test_the_plan_ledger_counts_the_sessions_recorded_for_the_patient(service: Service) -> None:
    _, episode, a = _episode_with_assessment(service)
    # 190 mg of lidocaine an hour ago; the 25 mg plan (201 on its own, above) makes 215 mg
    service.session(episode["id"], performed_at=_ago(1), sites=[_site(ml=19)])
    url = f"/api/v1/assessments/{a['id']}/plans"
    mark = service.watermark()
    body = _refused(service, service.post(url, json=plan_body()), mark, "plan.create")
    assert any("blocked" in e["reason"] for e in body["errors"])
    assert _count(service, url) == 0


def test_a_corrected_assessment_makes_its_plan_stale_until_re_planned(service: Service) -> None:
    _, episode, a = _episode_with_assessment(service)
    plan = service.plan(a["id"])
    service.ok(
        service.put(
            f"/api/v1/assessments/{a['id']}",
            json={
                "version": 1,
                "reason": "weight re-measured",
                "data": {"input": _plan_assessment()},
            },
        ),
        200,
    )
    stale = service.get(f"/api/v1/plans/{plan['id']}").json()
    assert stale["stale"] is True and stale["version"] == 2
    mark = service.watermark()
    r = service.post(f"/api/v1/plans/{plan['id']}/sign", json={"version": 2, "password": PASSWORD})
    assert _rules(_refused(service, r, mark, "plan.sign")) == {"plan.stale"}
    done = service.session(episode["id"], performed_at=_ago(1), plan_id=plan["id"])
    assert done["data"]["deviations"][0]["kind"] == "stale_plan"
    # re-planning re-runs the planner: a blocked plan is refused and the plan stays as it was
    blocked = {**plan_body(), "injectate": {"solutions": [{"agent": "lidocaine", "percent": 2}]}}
    blocked["targets"] = [{"muscle": "quadratus_lumborum", "side": "right", "sites": 15}]
    mark = service.watermark()
    r = service.put(
        f"/api/v1/plans/{plan['id']}", json={"version": 2, "reason": "more", "data": blocked}
    )
    assert _rules(_refused(service, r, mark, "plan.correct")) == {"plan.not_ready"}
    assert service.get(f"/api/v1/plans/{plan['id']}").json()["version"] == 2
    replanned = service.ok(
        service.put(
            f"/api/v1/plans/{plan['id']}",
            json={"version": 2, "reason": "re-planned", "data": plan_body()},
        ),
        200,
    )
    assert replanned["stale"] is False and replanned["data"]["assessment_version"] == 2
    sign_url = f"/api/v1/plans/{plan['id']}/sign"
    sign = {"version": 3, "password": PASSWORD}
    late = service.post(sign_url, json=sign, headers={"If-Match": '"2"'})
    assert late.status_code == 412 and late.json()["current_version"] == 3
    signed = service.ok(service.post(sign_url, json=sign, headers={"If-Match": "*"}), 200)
    assert signed["signed_by"] == service.usernames["clinician"]


def test_plans_recorded_before_the_kernel_stay_readable(service: Service) -> None:
    """A plan stored in the old shape (sites only) reads back as stored, never a 500."""
    _, _, a = _episode_with_assessment(service)
    plan = service.plan(a["id"])
    old = {"sites": plan["data"]["sites"][:1], "planned_for": None, "note": "2025 plan"}
    with service.backend.uow() as uow:
        rec = uow.records.get(uuid.UUID(plan["id"]))
        assert rec is not None
        new = replace(rec.current, version=2, data=old, reason="old shape")
        assert uow.records.append(NextVersion(rec.id, 1, new))
        uow.commit()
    got = service.get(f"/api/v1/plans/{plan['id']}")
    assert got.status_code == 200, got.text
    assert got.json()["data"]["sites"] == old["sites"] and got.json()["data"]["input"] == {}


# --------------------------------------------------------------------------- §2 sessions
def test_a_session_over_the_24h_limit_needs_a_reason_and_is_flagged(service: Service) -> None:
    _, episode, _ = _episode_with_assessment(service)
    url = f"/api/v1/episodes/{episode['id']}/sessions"
    first = service.session(episode["id"], performed_at=_ago(3), sites=[_site(ml=20)])
    assert first["data"]["dose"]["level"] == "caution"  # 200 of 200 mg
    assert first["data"]["dose_exceeded"] is False
    # a correction is checked without its own old version (else 200 + 200 mg would exceed)
    same = {k: first["data"][k] for k in ("performed_at", "complications")}
    fix = {
        "version": 1,
        "reason": "complication list checked",
        "data": {**same, "sites": [_site(ml=20)]},
    }
    assert service.ok(service.put(f"/api/v1/sessions/{first['id']}", json=fix), 200)["version"] == 2
    # 100 mg more would be fine on its own, but not after the 200 mg recorded today
    more = {"performed_at": _ago(2), "sites": [_site(ml=10)], "complications": ["none"]}
    mark = service.watermark()
    body = _refused(service, service.post(url, json=more), mark, "session.create")
    assert _rules(body) == {"dose.exceeds_limit"}
    # 200 + 250 = 450 mg of lidocaine in one day
    second = {**more, "performed_at": _ago(1), "sites": [_site(ml=25)]}
    mark = service.watermark()
    body = _refused(service, service.post(url, json=second), mark, "session.create")
    assert _rules(body) == {"dose.exceeds_limit"}
    assert {"S000.28", "S000.29"} <= set(body["errors"][0]["statement_ids"])
    mark = service.watermark()
    short = service.post(url, json={**second, "exceedance_reason": "needed"})
    assert _rules(_refused(service, short, mark, "session.create")) == {"dose.reason_too_short"}
    assert _count(service, url) == 1
    mark = service.watermark()
    reason = "second block at the surgeon's request; observed 30 min"
    kept = service.ok(service.post(url, json={**second, "exceedance_reason": reason}))
    assert kept["data"]["dose_exceeded"] is True and kept["data"]["exceedance_reason"] == reason
    assert kept["data"]["dose"]["level"] == "exceeds"
    assert [x["mg"] for x in kept["data"]["ledger"]] == [200.0]
    assert kept["data"]["total_mg_by_agent"] == {"lidocaine": 250.0}
    (event,) = [e for e in service.events_after(mark) if e.record_id is not None]
    assert (event.action, event.outcome) == ("session.create.dose_exceeded", "success")
    course = service.get(f"/api/v1/episodes/{episode['id']}/course").json()
    (safety,) = course["safety_events"]
    assert safety["session_id"] == kept["id"] and "S000.29" in safety["statement_ids"]
    assert safety["watch_early"] and safety["response"]


def test_an_implausible_session_is_refused_even_with_a_reason(service: Service) -> None:
    _, episode, _ = _episode_with_assessment(service)
    url = f"/api/v1/episodes/{episode['id']}/sessions"
    # 40 sites x 50 mL of 1 % = 2000 mL x 10 mg/mL = 20 g of lidocaine
    body = {
        "performed_at": _ago(1),
        "sites": [_site(ml=50)] * 40,
        "exceedance_reason": "documented as given by the previous shift",
    }
    mark = service.watermark()
    problem = _refused(service, service.post(url, json=body), mark, "session.create")
    assert _rules(problem) == {"dose.implausible"} and "20000 mg" in problem["errors"][0]["reason"]
    # lidocaine 3 % is not marketed (0.5-2 %): refused with a reason too, naming the site
    odd = {**body, "sites": [_site(percent=3, ml=2)]}
    mark = service.watermark()
    problem = _refused(service, service.post(url, json=odd), mark, "session.create")
    assert _rules(problem) == {"dose.invalid_input"}
    assert problem["errors"][0]["field"] == "sites[0].concentration_percent"
    assert _count(service, url) == 0


def test_a_nurse_records_for_a_clinician_and_cannot_impersonate(service: Service) -> None:
    _, episode, _ = _episode_with_assessment(service)
    url = f"/api/v1/episodes/{episode['id']}/sessions"
    body = {"performed_at": _ago(1), "sites": [_site(ml=2)]}
    mark = service.watermark()
    as_other = {**body, "operator": service.usernames["clinician"]}
    r = service.post(url, "nurse", json=as_other)
    assert _rules(_refused(service, r, mark, "session.create")) == {"author.operator_mismatch"}
    mark = service.watermark()
    r = service.post(url, "nurse", json={**body, "performer": service.usernames["viewer"]})
    assert _rules(_refused(service, r, mark, "session.create")) == {"author.performer_invalid"}
    own = service.session(episode["id"], role="nurse", performed_at=_ago(2))
    assert own["data"]["attestation"] == "attested"
    assert own["data"]["performer"] == own["data"]["operator"] == service.usernames["nurse"]
    assert own["data"]["deviations"] == [
        {"kind": "no_plan", "field": "plan_id", "text": "no plan named for this session"}
    ]
    clinicians = service.session(episode["id"], performed_at=_ago(3))
    retract = {"version": 1, "reason": "wrong patient"}
    mark = service.watermark()
    r = service.post(f"/api/v1/sessions/{clinicians['id']}/retract", "nurse", json=retract)
    assert r.status_code == 403
    assert [(e.action, e.outcome) for e in service.events_after(mark)] == [
        ("session.retract", "denied")
    ]
    mine = service.post(f"/api/v1/sessions/{own['id']}/retract", "nurse", json=retract)
    assert service.ok(mine, 200)["status"] == "entered_in_error"


# --------------------------------------------------------------------------- §3 values, time
def test_impossible_values_and_future_times_are_refused(service: Service) -> None:
    _, episode, _ = _episode_with_assessment(service)
    eid = episode["id"]
    sessions, outcomes = f"/api/v1/episodes/{eid}/sessions", f"/api/v1/episodes/{eid}/outcomes"
    future = {"performed_at": "2099-01-01T10:00:00+00:00", "sites": [_site()]}
    mark = service.watermark()
    body = _refused(service, service.post(sessions, json=future), mark, "session.create")
    assert body["errors"][0]["field"] == "performed_at" and _rules(body) == {"time.future"}
    today = datetime.now(UTC).date().isoformat()
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"instrument": "nrs", "value": 11}, "value", "0-10"),
        ({"instrument": "nrs", "value": 999999}, "value", "0-10"),
        ({"instrument": "odi", "value": 250}, "value", "0-100"),
        ({"instrument": "relief_days", "value": -1}, "value", "0-3650"),
        ({"instrument": "nrs", "value": 3.5}, "value", "whole number"),
        ({"instrument": "nrs", "value": 3, "measured_on": "2099-06-01"}, "measured_on", "future"),
        ({"instrument": "bogus_scale", "value": 3}, "instrument", "unknown"),
    ]
    for data, field, words in cases:
        mark = service.watermark()
        r = service.post(outcomes, json={"measured_on": today, **data})
        err = _refused(service, r, mark, "outcome.create")["errors"][0]
        assert err["field"] == field and words in err["reason"], (data, err)
    assert _count(service, sessions) == 0 and _count(service, outcomes) == 0


def test_dates_onset_before_birth_and_follow_ups_before_their_session(service: Service) -> None:
    patient = service.patient(birth_year=1974)
    url = f"/api/v1/patients/{patient['id']}/episodes"
    for onset, rule in (("1960-01-01", "time.before_birth"), ("2099-01-01", "time.future")):
        mark = service.watermark()
        r = service.post(url, json={"regions": ["low_back"], "onset": onset})
        assert _rules(_refused(service, r, mark, "episode.create")) == {rule}
    _, episode, _ = _episode_with_assessment(service)
    s = service.session(episode["id"], performed_at="2026-11-21T10:00:00+00:00")
    follow_up = {"instrument": "nrs", "value": 2, "session_id": s["id"], "relation": "after"}
    mark = service.watermark()
    r = service.post(
        f"/api/v1/episodes/{episode['id']}/outcomes",
        json={**follow_up, "measured_on": "2026-11-20"},
    )
    assert _rules(_refused(service, r, mark, "outcome.create")) == {"time.before_session"}
    ok = service.post(
        f"/api/v1/episodes/{episode['id']}/outcomes",
        json={**follow_up, "measured_on": "2026-11-21"},
    )
    assert service.ok(ok)["data"]["relation"] == "after"
    baseline = {**follow_up, "relation": "before", "measured_on": "2026-11-22"}
    mark = service.watermark()
    r = service.post(f"/api/v1/episodes/{episode['id']}/outcomes", json=baseline)
    assert _rules(_refused(service, r, mark, "outcome.create")) == {"time.after_session"}


def test_free_text_keeps_tab_and_newline_exactly_and_refuses_other_controls(
    service: Service,
) -> None:
    _, episode, _ = _episode_with_assessment(service)
    url = f"/api/v1/episodes/{episode['id']}/sessions"
    typed = "line one\n\tindented  two spaces "
    kept = service.session(episode["id"], performed_at=_ago(1), note=typed)
    assert kept["data"]["note"] == typed
    bad = {"performed_at": _ago(1), "sites": [_site()], "note": "bell\x07here"}
    r = service.post(url, json=bad)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "note"
    assert _count(service, url) == 1


# --------------------------------------------------------------------------- §10 ETag / If-Match
def test_etag_and_if_match_guard_against_lost_updates(service: Service) -> None:
    patient = service.patient()
    url = f"/api/v1/patients/{patient['id']}"
    read = service.get(url)
    assert read.headers["etag"] == '"1"' and read.json()["version"] == 1
    change = {"version": 1, "reason": "typo", "data": {**patient["data"], "sex": "female"}}
    mark = service.watermark()
    stale = service.put(url, json=change, headers={"If-Match": '"2"'})
    assert stale.status_code == 412 and stale.json()["current_version"] == 1
    assert [e.outcome for e in service.events_after(mark)] == ["conflict"]
    fresh = service.put(url, json=change, headers={"If-Match": read.headers["etag"]})
    assert fresh.status_code == 200 and fresh.headers["etag"] == '"2"'
    again = service.post(
        f"{url}/retract",
        json={"version": 2, "reason": "duplicate"},
        headers={"If-Match": '"1"'},
    )
    assert again.status_code == 412
    assert service.get(url).json()["status"] == "active"
    weak = service.post(
        f"{url}/retract", json={"version": 2, "reason": "duplicate"}, headers={"If-Match": 'W/"2"'}
    )
    assert weak.status_code == 200 and weak.headers["etag"] == '"3"'
