"""The web forms go through the same rules as every other entry point (issue 11 §1-§3, §6).

- the web planner gives `triggerpath plan`'s answer for every file in examples/plans/;
- the Done-when refusals typed into the web forms are refused, shown beside their fields in
  plain words (linked by aria-describedby, never an internal path such as input.pain.nrs),
  and nothing is stored;
- the session form starts from the plan it carries out; a reassessment starts empty or
  marks what it copies; drafts are per user and erased on sign-out.

Browser tests drive Debian's Chromium (tests/web/conftest.py). To keep them lean, bulk set-up
(patients, assessments) is posted through the signed-in browser context's own request API:
the same forms, the same cookies and CSRF token, without rendering each page.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from uuid import uuid4

import pytest
from playwright.sync_api import APIResponse, Page, expect
from typer.testing import CliRunner

from triggerpath.domain.assessment import Assessment
from triggerpath.domain.integrity import planned_sites
from triggerpath.domain.planning import parse_plan_request, plan_from_request
from triggerpath.domain.policy import DEFAULT_POLICY
from triggerpath.entrypoints.cli import app as cli
from triggerpath.entrypoints.web import forms
from triggerpath.entrypoints.web.views_course import _session_values, technique_cards
from triggerpath.knowledge import Knowledge
from triggerpath.services.episodes import Bundle
from triggerpath.services.model import Record, Version
from triggerpath.services.payloads import PlanData

from ..conftest import ROOT
from .conftest import App, login

PLANS = ROOT / "examples" / "plans"
PLAN_FILES = sorted(p for p in PLANS.glob("*.json") if p.name != "expected.json")
INTERNAL_PATH = re.compile(r"\binput\.|\bbody\.|\w+\.\w+\[\d+\]")


# --------------------------------------------------------------------------- helpers
def _csrf(page: Page) -> str:
    return page.locator('input[name="csrf"]').first.input_value()


def _post(page: Page, app: App, path: str, pairs: list[tuple[str, str]]) -> APIResponse:
    """Post a form as the browser would (urlencoded, with the page's CSRF token)."""
    body = urlencode([("csrf", _csrf(page)), *pairs])
    return page.request.post(
        app.at(path),
        data=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )


def _pairs(values: forms.Values) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for k, v in values.items():
        out.extend((k, x) for x in v) if isinstance(v, list) else out.append((k, v))
    return out


def _new_episode(page: Page, app: App, regions: list[str]) -> str:
    mrn = f"KW-{secrets.token_hex(3).upper()}"
    res = _post(
        page,
        app,
        "/app/patients/new",
        [
            ("mrn", mrn),
            ("family_name", "Kernelform"),
            ("given_name", "Kim"),
            ("birth_date", "1970-02-03"),
            ("sex", "female"),
        ]
        + [("regions", r) for r in regions],
    )
    assert res.ok, res.text()[:500]
    m = re.search(r"/app/episodes/([0-9a-f-]{36})/assess", res.url)
    assert m, res.url
    return m.group(1)


def _new_assessment(page: Page, app: App, episode: str, a: Assessment) -> str:
    values = forms.assessment_values(a, app.today)
    res = _post(page, app, f"/app/episodes/{episode}/assess", _pairs(values))
    assert res.ok, res.text()[:2000]
    m = re.search(r"/app/assessments/([0-9a-f-]{36})", res.url)
    assert m, res.url
    return m.group(1)


def _stored_plans(page: Page, app: App, episode: str) -> int:
    html = page.request.get(app.at(f"/app/episodes/{episode}")).text()
    return len(set(re.findall(r"/app/plans/([0-9a-f-]{36})", html)))


def _stored_sessions(page: Page, app: App, episode: str) -> int:
    html = page.request.get(app.at(f"/app/episodes/{episode}")).text()
    return len(set(re.findall(r"/app/sessions/([0-9a-f-]{36})", html)))


def _session_form(page: Page, app: App, episode: str, when: str, volume_ml: str) -> None:
    """The session form with one quadratus lumborum site of 1 % lidocaine."""
    page.goto(app.at(f"/app/episodes/{episode}/sessions/new"))
    page.select_option('[name="sites[0].muscle"]', "quadratus_lumborum")
    page.select_option('[name="sites[0].agent"]', "lidocaine")
    page.fill('[name="sites[0].concentration_percent"]', "1")
    page.fill('[name="sites[0].volume_ml"]', volume_ml)
    page.evaluate("() => { document.querySelector('.tz-offset').value = '0'; }")
    page.fill('[name="performed_at"]', when)
    page.fill('[name="pre_nrs"]', "6")
    page.check('[name="consent"]')


def _example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PLANS / f"{name}.json").read_text())
    return data


def _assert_beside(page: Page, name: str, words: str) -> None:
    """The field ``name`` is marked invalid and described by an error in plain words."""
    field = page.locator(f'[name="{name}"]').first
    described = field.get_attribute("aria-describedby") or ""
    err_id = next((i for i in described.split() if i.startswith("err-")), None)
    assert err_id, f"{name} has no error in aria-describedby ({described!r})"
    assert field.get_attribute("aria-invalid") == "true"
    error = page.locator(f"#{err_id}")
    expect(error).to_contain_text(words)
    _assert_plain(page)


def _assert_plain(page: Page) -> None:
    summary = page.locator("#error-summary")
    if summary.count():
        links = " | ".join(summary.locator("a").all_inner_texts())
        assert not INTERNAL_PATH.search(links), links


# --------------------------------------------------------------------------- same answer
@pytest.mark.browser
def test_web_planner_gives_the_cli_answer(page: Page, app_server: App) -> None:
    """Every example plan, its assessment stored through the web assessment form and its
    plan through the web planner's own check, gets exactly `triggerpath plan`'s answer."""
    app = app_server
    login(page, app)
    episode = _new_episode(page, app, ["low_back", "upper_back", "mid_back"])
    runner = CliRunner()
    for path in PLAN_FILES:
        data = _example(path.stem)
        cli_res = runner.invoke(
            cli, ["plan", str(path), "--format", "json", "--as-of", app.today.isoformat()]
        )
        assert cli_res.exit_code == 0, cli_res.output
        expected = json.loads(cli_res.stdout)
        assessment = Assessment.model_validate(data["assessment"])
        a_id = _new_assessment(page, app, episode, assessment)
        values = forms.plan_values({k: v for k, v in data.items() if k != "assessment"})
        res = page.request.post(
            app.at(f"/app/api/assessments/{a_id}/plan-check"),
            data=urlencode(_pairs(values)),
            headers={
                "content-type": "application/x-www-form-urlencoded",
                "X-CSRF-Token": _csrf(page),
            },
        )
        assert res.ok, res.text()[:500]
        web = res.json()
        assert web["status"] == expected["status"], path.stem
        assert web["headline"] == expected["headline"], path.stem
        assert [i["code"] for i in web["issues"]] == [i["code"] for i in expected["issues"]]
        if expected.get("dose"):
            assert web["dose"]["level"] == expected["dose"]["level"], path.stem
            assert web["dose"]["agents"] == expected["dose"]["agents"], path.stem


# --------------------------------------------------------------------------- refusals
def _force_submit(page: Page, selector: str) -> None:
    """Send a form even where the page disables its button: the server must refuse."""
    page.evaluate(
        "(sel) => { const b = document.querySelector(sel); b.disabled = false; b.click(); }",
        selector,
    )
    page.wait_for_load_state()


@pytest.mark.browser
def test_web_forms_refuse_what_the_pathway_forbids(page: Page, app_server: App) -> None:
    """The Done-when refusals through the web forms: a 600 mg plain-lidocaine plan for 84 kg,
    a plan for an urgent-referral assessment and a 40-site 10 % lidocaine plan store nothing
    and say why beside the fields; a session in 2099, NRS 11 and 999999, an outcome in 2099
    and an out-of-range ODI answer are refused beside their fields in plain words."""
    app = app_server
    login(page, app)
    episode = _new_episode(page, app, ["low_back"])
    base = _example("ql_low_back_ok")["assessment"]
    heavy = Assessment.model_validate({**base, "patient": {**base["patient"], "weight_kg": 84}})
    a_id = _new_assessment(page, app, episode, heavy)

    # 600 mg plain lidocaine: 20 sites x 1.5 mL of 2 % (20 mg/mL) into one target
    page.goto(app.at(f"/app/assessments/{a_id}/plan"))
    page.fill('[name="targets[0].sites"]', "20")
    page.fill('[name="targets[0].volume_ml_per_site"]', "1.5")
    page.fill('[name="injectate.solutions[0].percent"]', "2")
    page.fill('[name="injectate.saline_parts"]', "0")
    for extra in page.locator('[name^="targets["][name$="].muscle"]').all()[1:]:
        extra.select_option("")
    expect(page.locator("#dose-live")).to_contain_text("EXCEEDS")
    _force_submit(page, "#save-plan")
    expect(page.locator("#err-plan")).to_contain_text("Not saved")
    expect(page.locator("#f-injectate")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#err-injectate")).to_contain_text("EXCEEDS the limit")
    expect(page.locator("#err-injectate")).to_contain_text("S000.28")
    _assert_plain(page)

    # 40 sites of 10 % lidocaine: not a marketed strength, far over the limit
    page.fill('[name="targets[0].sites"]', "40")
    page.fill('[name="targets[0].volume_ml_per_site"]', "5")
    page.fill('[name="injectate.solutions[0].percent"]', "10")
    _force_submit(page, "#save-plan")
    expect(page.locator(".error-summary")).to_be_visible()
    assert page.locator("p.error").count() >= 1
    _assert_plain(page)
    assert _stored_plans(page, app, episode) == 0

    # urgent referral (cauda equina): no plan at all
    urgent = Assessment.model_validate(
        {**base, "red_flags": {**base["red_flags"], "cauda_equina": True}}
    )
    u_id = _new_assessment(page, app, episode, urgent)
    page.goto(app.at(f"/app/assessments/{u_id}/plan"))
    _force_submit(page, "#save-plan")
    expect(page.locator("#err-plan")).to_contain_text("Not saved")
    assert _stored_plans(page, app, episode) == 0

    # sessions: in 2099, NRS 11, NRS 999999
    page.goto(app.at(f"/app/episodes/{episode}/sessions/new"))
    page.fill('[name="sites[0].volume_ml"]', "1")
    page.select_option('[name="sites[0].muscle"]', "quadratus_lumborum")
    page.fill('[name="sites[0].concentration_percent"]', "1")
    page.evaluate("() => { document.querySelector('.tz-offset').value = '0'; }")
    page.fill('[name="performed_at"]', "2099-01-01T10:00")
    page.fill('[name="pre_nrs"]', "11")
    page.check('[name="consent"]')
    page.click("button:has-text('Record session')")
    _assert_beside(page, "performed_at", "future")
    _assert_beside(page, "pre_nrs", "0-10")
    page.fill('[name="performed_at"]', app.today.isoformat() + "T00:01")
    page.fill('[name="pre_nrs"]', "999999")
    page.click("button:has-text('Record session')")
    _assert_beside(page, "pre_nrs", "0-10")
    expect(page.locator("#error-summary")).to_contain_text("Pain before the injection")
    html = page.request.get(app.at(f"/app/episodes/{episode}")).text()
    assert "/app/sessions/" not in html  # nothing stored

    # the 24-hour ledger: 150 mg, then a second same-day session taking it to 450 mg
    # (the dose engine's limit for this patient is 200 mg of plain lidocaine: 150 mg is 75 %)
    today = app.today.isoformat() + "T00:01"
    _session_form(page, app, episode, today, "15")
    page.click("button:has-text('Record session')")
    page.wait_for_load_state()
    summary = page.locator("#error-summary")
    assert summary.count() == 0, summary.inner_text()
    page.wait_for_url(re.compile(r"/app/sessions/[0-9a-f-]{36}"))
    _session_form(page, app, episode, today, "30")
    page.click("button:has-text('Record session')")
    _assert_beside(page, "exceedance_reason", "over the limit")
    expect(page.locator("#err-exceedance_reason")).not_to_contain_text("exceedance_reason")
    assert _stored_sessions(page, app, episode) == 1
    page.fill('[name="exceedance_reason"]', "Second area treated after review; observed 60 min")
    page.click("button:has-text('Record session')")
    page.wait_for_url(re.compile(r"/app/sessions/[0-9a-f-]{36}"))
    expect(page.locator("#safety-event")).to_contain_text("dose limit exceeded")
    note = page.request.get(page.url.split("?")[0] + "/note").text()
    assert "Safety event: dose limit exceeded" in note and "observed 60 min" in note
    page.goto(app.at(f"/app/episodes/{episode}"))
    expect(page.locator(".safety-event")).to_contain_text("dose limit exceeded")
    expect(page.locator(".safety-event")).to_contain_text("S000.29")
    assert _stored_sessions(page, app, episode) == 2

    # 20 g in one session (4 x 50 mL of 10 %): a typing error, refused even with a reason
    page.goto(app.at(f"/app/episodes/{episode}/sessions/new"))
    pairs = [("performed_at", today), ("tz_offset", "0"), ("pre_nrs", "5"), ("consent", "on")]
    for i in range(4):
        pairs += [
            (f"sites[{i}].muscle", "quadratus_lumborum"),
            (f"sites[{i}].side", "right"),
            (f"sites[{i}].agent", "lidocaine"),
            (f"sites[{i}].concentration_percent", "10"),
            (f"sites[{i}].volume_ml", "50"),
        ]
    pairs.append(("exceedance_reason", "I really mean to give this much today"))
    res = _post(page, app, f"/app/episodes/{episode}/sessions/new", pairs)
    assert res.status == 422
    assert "20000 mg lidocaine in one session" in res.text()
    assert "a typing error, not a storable event" in res.text()
    assert _stored_sessions(page, app, episode) == 2

    # outcomes: in 2099, and an ODI answer outside 0-5 (an ODI over 100 %)
    page.goto(app.at(f"/app/episodes/{episode}/outcomes/new"))
    page.fill('[name="measured_on"]', "2099-01-01")
    page.fill('[name="nrs"]', "11")
    page.fill('[name="odi[0]"]', "250")
    page.click("button:has-text('Record follow-up')")
    _assert_beside(page, "measured_on", "future")
    _assert_beside(page, "nrs", "0-10")
    _assert_beside(page, "odi[0]", "out of range 0-5")
    expect(page.locator("#error-summary")).to_contain_text("Oswestry Disability Index item 1")
    expect(page.locator("#error-summary")).to_contain_text("Date of the follow-up")
    expect(page.locator("#error-summary")).not_to_contain_text("measured_on")


# --------------------------------------------------------------------------- drafts
@pytest.mark.browser
def test_drafts_are_per_user_and_erased_on_sign_out(page: Page, app_server: App) -> None:
    """A draft typed by one user is kept for that user (across a session timeout), never
    offered to the next user on the machine, and every draft goes on sign-out."""
    app = app_server
    login(page, app)
    episode = _new_episode(page, app, ["low_back"])
    form_url = app.at(f"/app/episodes/{episode}/outcomes/new")
    page.goto(form_url)
    page.fill('[name="nrs"]', "4")
    page.fill('[name="relief_days"]', "9")
    keys = page.evaluate("() => Object.keys(localStorage)")
    assert keys == [f"tp-draft:e2e.clinician:outcome-{episode}"]

    page.context.clear_cookies()  # session timeout: the next person signs in
    login(page, app, "e2e.nurse")
    page.goto(form_url)
    expect(page.locator("#draft-note")).to_be_hidden()
    assert page.input_value('[name="nrs"]') == ""

    page.click("button:has-text('Sign out')")
    page.wait_for_url(re.compile(r"/app/login"))
    assert (
        page.evaluate("() => Object.keys(localStorage).filter(k => k.startsWith('tp-draft:'))")
        == []
    )


# --------------------------------------------------------------------------- reassessment
@pytest.mark.browser
def test_reassessment_starts_empty_or_marks_what_it_copies(page: Page, app_server: App) -> None:
    app = app_server
    login(page, app)
    episode = _new_episode(page, app, ["low_back"])
    a = Assessment.model_validate(_example("ql_low_back_ok")["assessment"])
    _new_assessment(page, app, episode, a)
    page.goto(app.at(f"/app/episodes/{episode}/assess"))
    assert page.locator(".copied").count() == 0
    assert page.input_value('[name="pain.nrs"]') == ""  # nothing copied silently
    page.click("#copy-last")
    expect(page.locator("#copied-banner")).to_contain_text(f"copied from {app.today.isoformat()}")
    nrs_label = page.locator('label[for="f-pain-nrs"]')
    expect(nrs_label.locator(".copied")).to_have_text(f"copied from {app.today.isoformat()}")
    assert page.input_value('[name="pain.nrs"]') == str(a.pain.nrs)
    page.fill('[name="pain.nrs"]', "5")
    page.locator('[name="pain.nrs"]').dispatch_event("change")
    expect(nrs_label.locator(".copied")).to_have_count(0)  # changed: no longer a copy
    page.click("button:has-text('Assess')")
    _assert_beside(page, "confirm_copied", "confirm the findings copied")
    page.check('[name="confirm_copied"]')
    page.click("button:has-text('Assess')")
    page.wait_for_url(re.compile(r"/app/assessments/[0-9a-f-]{36}"))


# --------------------------------------------------------------------------- prefill
def _record(kind: Any, data: dict[str, Any]) -> Record:
    now = datetime(2026, 11, 21, 9, tzinfo=UTC)
    return Record(
        uuid4(), kind, uuid4(), None, now, "t", Version(1, "active", data, now, "t", None)
    )


def test_session_form_starts_from_the_plan(kb: Knowledge) -> None:
    """The session form carries out the plan: its targets, solution and volumes, and the
    technique card's guidance and needle (QL: ultrasound, 28 G, 60-90 mm); aspiration,
    twitch, consent and complications start unrecorded, never as fixed defaults."""
    raw = _example("ql_steroid_after_failed_tpis")
    plan = plan_from_request(parse_plan_request(raw, kb), kb, as_of=datetime(2026, 11, 21).date())
    assert plan.status == "ready"
    data = PlanData(
        input={k: v for k, v in raw.items() if k != "assessment"},
        as_of=datetime(2026, 11, 21).date(),
        result=plan.model_dump(mode="json"),
        knowledge_version=kb.version,
        policy=DEFAULT_POLICY,
        policy_version=0,
        assessment_version=1,
        sites=planned_sites(plan),
    )
    record = _record("plan", data.model_dump(mode="json"))
    b = Bundle(patient=_record("patient", {}), episode=_record("episode", {}))
    values = _session_values_with(b, record)
    assert values["plan_id"] == str(record.id)
    assert values["sites[0].muscle"] == "quadratus_lumborum"
    assert values["sites[0].agent"] == "lidocaine"
    assert values["guidance"] == "ultrasound"
    assert values["needle_gauge"] == "28"
    assert values["needle_length_mm"] == "90"
    for unrecorded in ("aspiration", "twitch", "consent", "complications", "time_out"):
        assert unrecorded not in values
    assert technique_cards(kb, values) == [
        "Quadratus lumborum: 28 G, 60-90 mm, ultrasound recommended"
    ]


def _session_values_with(b: Bundle, plan: Record) -> forms.Values:
    """``_session_values`` with the bundle's plan list holding just ``plan``."""
    b.assessments = [_record("assessment", {})]
    b.plans = {b.assessments[0].id: [plan]}
    return _session_values(b, plan.id, datetime(2026, 11, 21, 10, tzinfo=UTC))


def test_refusals_are_said_in_plain_words_beside_the_form_field() -> None:
    """The safety kernel's field paths become the form's fields and plain labels; its rule's
    statement ids follow the reason; internal names inside a reason are said in words."""
    from triggerpath.errors import RuleProblem

    assert forms.plain_field("input.pain.nrs") == "Pain now (NRS 0-10)"
    assert forms.plain_field("sites[2].volume_ml") == "Site 3 – volume (mL)"
    assert forms.plain_field("trigger_points[0].taut_band") == "Trigger point 1 – taut band"
    assert (
        forms.plain_field("injectate.solutions[1].percent")
        == "Injectate – Solution 2 – strength (%)"
    )
    problems = [
        RuleProblem("input.pain.nrs", "11 is out of range 0-10", "value.out_of_range"),
        RuleProblem(
            "exceedance_reason",
            "over the limit: needs exceedance_reason",
            "dose.exceeds_limit",
            ("S000.28", "S000.29"),
        ),
    ]
    errors = forms.refusal_errors(problems)
    assert errors == {
        "pain.nrs": ["11 is out of range 0-10"],
        "exceedance_reason": [
            "over the limit: needs the reason for exceeding the dose limit field (S000.28, S000.29)"
        ],
    }
