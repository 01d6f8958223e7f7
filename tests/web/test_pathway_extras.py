"""Issue 17 §3 and §7 in the browser: role-aware forms, plain errors next to the field, no
default sex, a future onset refused with nothing stored, STarT Back and medial branch block
entry, the corticosteroid offered only where the knowledge allows it, referral zones."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from .a11y import check_page
from .conftest import App, login
from .test_day import _assess, _new_patient

pytestmark = pytest.mark.browser


def _patient_form(page: Page, app: App, mrn: str, *, sex: str | None, onset: str) -> None:
    page.goto(app.at("/app/patients/new"))
    page.fill('[name="mrn"]', mrn)
    for name, value in (("birth_year", "1970"), ("birth_date", "1970-05-05")):
        if page.locator(f'[name="{name}"]').count():
            page.fill(f'[name="{name}"]', value)
    for name, value in (("family_name", "Extra"), ("given_name", "Test")):
        if page.locator(f'[name="{name}"]').count():
            page.fill(f'[name="{name}"]', value)
    if sex:
        page.select_option('[name="sex"]', sex)
    page.check('input[name="regions"][value="low_back"]')
    page.fill('[name="onset"]', onset)
    page.click("form button[type=submit].primary")


def _described_error(page: Page, name: str) -> str:
    """The error text a field points at with aria-describedby."""
    field = page.locator(f'[name="{name}"]')
    expect(field).to_have_attribute("aria-invalid", "true")
    ids = (field.get_attribute("aria-describedby") or "").split()
    texts = [page.locator(f'[id="{i}"]').inner_text() for i in ids if "err-" in i]
    assert texts, f"{name}: no error linked by aria-describedby"
    return " ".join(texts)


def test_sex_has_no_default_and_a_future_onset_stores_nothing(page: Page, app_server: App) -> None:
    login(page, app_server)
    page.goto(app_server.at("/app/patients/new"))
    assert page.input_value('[name="sex"]') == ""  # nothing chosen for the clinician
    mrn = f"XF-{secrets.token_hex(3).upper()}"
    tomorrow = (app_server.today + timedelta(days=3)).isoformat()
    _patient_form(page, app_server, mrn, sex=None, onset=tomorrow)
    expect(page.locator("#error-summary")).to_be_visible()
    assert "sex" in _described_error(page, "sex")
    onset_error = _described_error(page, "onset")
    assert "future" in onset_error
    page.select_option('[name="sex"]', "male")
    page.click("form button[type=submit].primary")
    # still refused (the onset), and no internal path or rule code on the page
    assert "future" in _described_error(page, "onset")
    body = page.locator("main").inner_text()
    assert "time.future" not in body and "input." not in body
    check_page(page, "extras-refused-onset", primary="form button[type=submit].primary")
    # an onset before the year of birth: the safety kernel refuses the episode, and the
    # patient created in the same unit of work is not kept either
    _patient_form(page, app_server, mrn, sex="male", onset="1960-01-01")
    assert "before the year of birth" in _described_error(page, "onset")
    # nothing was stored: the MRN is still free
    page.goto(app_server.at(f"/app/patients?q={mrn}"))
    expect(page.locator("table.list tbody")).to_contain_text("No patients found")


def test_nurse_is_not_offered_clinician_forms(page: Page, app_server: App) -> None:
    login(page, app_server, "e2e.nurse")
    expect(page.locator("header nav a:has-text('New patient')")).to_have_count(0)
    page.goto(app_server.at("/app/patients/new"))
    page.fill('[name="mrn"]', "NURSE-TRY")
    page.select_option('[name="sex"]', "female")
    page.check('input[name="regions"][value="low_back"]')
    page.click("form button[type=submit].primary")
    expect(page.locator("h1")).to_have_text("Not allowed for your role")
    text = page.locator("main").inner_text()
    assert "Your role (nurse) cannot record a patient" in text
    assert "Ask a clinician" in text and "patient.create" not in text


def _failing_episode(page: Page, app: App) -> str:
    """The demo patient whose course is failing (re-evaluation open): its course URL."""
    page.goto(app.at("/app/patients?q=DEMO-"))
    for link in page.locator("table.list tbody a").all():
        href = link.get_attribute("href") or ""
        probe = page.context.new_page()
        probe.goto(app.at(href))
        episode = probe.locator("table.list a").first.get_attribute("href") or ""
        probe.goto(app.at(episode + "/course"))
        failing = probe.locator("#worksheet").count() > 0
        probe.close()
        if failing:
            return app.at(episode + "/course")
    pytest.fail("no demo episode with an open re-evaluation")


def test_startback_and_medial_branch_blocks(page: Page, app_server: App) -> None:
    login(page, app_server)
    course = _failing_episode(page, app_server)
    episode = course.removesuffix("/course")
    # STarT Back on the follow-up form. Hill 2008: total 4 (>= 4) with a psychosocial
    # subscale (items 5-9) of 0 (<= 3) -> medium risk
    page.goto(episode + "/outcomes/new")
    page.fill('[name="nrs"]', "6")
    answers = [1, 1, 1, 1, 0, 0, 0, 0, 0]
    for i, v in enumerate(answers):
        page.fill(f'[name="startback[{i}]"]', str(v))
    page.click("#outcome-submit")
    page.wait_for_url(re.compile(r"/course"))
    expect(page.locator("main")).to_contain_text("STarT Back")
    expect(page.locator("main")).to_contain_text(re.compile("medium", re.IGNORECASE))
    # a medial branch block: an impossible relief is refused next to the field
    page.fill('[name="mbb.relief_pct"]', "150")
    page.click("#mbb-submit")
    assert "100" in _described_error(page, "mbb.relief_pct")
    # 80% relief: more than 50% (S000.32) -> radiofrequency ablation supported (default rule)
    page.fill('[name="mbb.date"]', (app_server.today - timedelta(days=2)).isoformat())
    page.fill('[name="mbb.level"]', "L4-L5 right")
    page.fill('[name="mbb.relief_pct"]', "80")
    page.click("#mbb-submit")
    page.wait_for_url(re.compile(r"saved=block"))
    expect(page.locator("#blocks table")).to_contain_text("L4-L5 right")
    expect(page.locator("#ablation")).to_contain_text("supported")
    check_page(page, "extras-course-blocks", primary="#worksheet-submit")


def test_steroid_offered_only_after_failed_local_anesthetic_tpis(
    page: Page, app_server: App
) -> None:
    """S003.09: corticosteroids are for persistent trigger points that did not respond to
    local anesthetic TPIs; otherwise the planner says why none is offered."""
    login(page, app_server)
    for failed_before, offered in ((False, 0), (True, 1)):
        _new_patient(page, app_server, check=False)
        _assess(page, app_server, check=False, prior_tpi_failed=failed_before)
        page.click("a:has-text('Plan the procedure')")
        page.wait_for_url(re.compile(r"/plan$"))
        expect(page.locator('[name="steroid.agent"]')).to_have_count(offered)
        if not failed_before:  # the live dose check's errors sit next to their field too
            page.fill('[name="injectate.solutions[0].percent"]', "one")
            expect(page.locator(".live-error").first).to_be_visible()
            error = _described_error(page, "injectate.solutions[0].percent")
            assert "injectate" not in error and "number" in error, error
            page.fill('[name="injectate.solutions[0].percent"]', "1")
            expect(page.locator(".live-error")).to_have_count(0)
            field = page.locator('[name="injectate.solutions[0].percent"]')
            expect(field).not_to_have_attribute("aria-invalid", "true")
        if offered:
            expect(page.locator("#f-steroid")).to_contain_text("may be added")
        else:
            expect(page.locator("#steroid-not-offered")).to_contain_text("No corticosteroid")


def test_referral_zones_follow_the_selected_marker(page: Page, app_server: App) -> None:
    login(page, app_server)
    page.goto(app_server.at("/app/patients?q=DEMO-001"))
    page.click("table.list a")
    page.click("table.list a")
    page.click("a:has-text('New assessment')")
    zones = 'svg.bodymap path.referral[data-muscle="piriformis"][data-side="left"]'
    expect(page.locator(zones)).to_be_hidden()
    page.focus('svg.bodymap circle.tp[data-muscle="piriformis"][data-side="left"]')
    expect(page.locator(zones)).to_be_visible()
    expect(page.locator("#muscle-info")).to_contain_text("Piriformis")
    other = 'svg.bodymap path.referral[data-muscle="piriformis"][data-side="right"]'
    expect(page.locator(other)).to_be_hidden()
