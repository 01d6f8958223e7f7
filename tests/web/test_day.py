"""Done-when for issue 17: a clinician's and a nurse's day in the browser, at three widths.

Every page on the way goes through :func:`tests.web.a11y.check_page`: axe-core 0 violations
(WCAG 2.2 AA), no sideways scrolling, targets >= 24 px (body-map markers included), the
primary action <= 10 Tab stops away, visible focus, and the verdict page's height limits
(<= 2,000 px at 1366 wide, <= 4,500 px at 360). One server and one browser for the whole run;
one browser context per (role, viewport).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import Browser, Page, expect

from .a11y import VERDICT_MAX_HEIGHT, VIEWPORTS, check_page
from .conftest import App, login

pytestmark = pytest.mark.browser


@pytest.fixture(params=list(VIEWPORTS), ids=[f"w{w}" for w in VIEWPORTS])
def vpage(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORTS[request.param])
    context.set_default_timeout(15_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def _fill_if_present(page: Page, selector: str, value: str) -> None:
    if page.locator(selector).count():
        page.fill(selector, value)


def _new_patient(page: Page, app: App, *, check: bool = True) -> None:
    page.goto(app.at("/app/patients/new"))
    if check:
        check_page(page, "day-new-patient", primary="form button[type=submit].primary")
    page.fill('[name="mrn"]', f"DAY-{secrets.token_hex(3).upper()}")
    _fill_if_present(page, '[name="family_name"]', "Day")
    _fill_if_present(page, '[name="given_name"]', "Walker")
    _fill_if_present(page, '[name="birth_date"]', "1968-04-02")
    _fill_if_present(page, '[name="birth_year"]', "1968")
    page.select_option('[name="sex"]', "female")
    page.check('input[name="regions"][value="low_back"]')
    page.fill('[name="onset"]', (app.today - timedelta(weeks=60)).isoformat())
    page.click("form button[type=submit].primary")
    page.wait_for_url(re.compile(r"/assess"))


def _assess(page: Page, app: App, *, check: bool = True, prior_tpi_failed: bool = False) -> None:
    if check:
        check_page(page, "day-assess", primary="#assess-submit")
    page.fill('[name="patient.weight_kg"]', "72")
    page.fill('[name="patient.height_cm"]', "164")
    page.check('input[name="patient.pregnant"][value="no"]')
    page.fill('[name="as_of"]', (app.today - timedelta(days=21)).isoformat())
    page.fill('[name="pain.nrs"]', "7")
    page.check('input[name="pain.constant"][value="yes"]')
    page.select_option('[name="pain.daily_activity_impact"]', "moderate")
    page.check('input[name="pain.widespread"][value="no"]')
    page.check('input[name="pain.headache"][value="no"]')
    page.check('input[name="causes"][value="posture"]')
    page.evaluate(
        """() => {
          for (const el of document.querySelectorAll('input[type=radio][value=no]')) {
            if (/^(red_flags|pain_generators|contraindications)\\./.test(el.name))
              el.checked = true;
          }
        }"""
    )
    page.focus('svg.bodymap circle.tp[data-muscle="quadratus_lumborum"][data-side="right"]')
    page.keyboard.press("Enter")
    row = page.locator(".tp-card").filter(
        has=page.locator('select[name$=".muscle"] option:checked[value="quadratus_lumborum"]')
    )
    index = row.get_attribute("data-index")
    # every trigger-point finding present (the cards' yes/no/not examined radios)
    page.locator(f'.tp-card[data-index="{index}"] input[type=radio][value=yes]').evaluate_all(
        "(els) => els.forEach(el => { el.checked = true; })"
    )
    page.check('[name="conservative_care.recorded"]')
    page.fill('[name="conservative_care.physical_therapy.weeks"]', "8")
    page.select_option('[name="conservative_care.physical_therapy.response"]', "partial")
    if prior_tpi_failed:  # earlier local anesthetic TPIs that gave no relief
        page.fill('[name="conservative_care.trigger_point_injection.weeks"]', "6")
        page.select_option('[name="conservative_care.trigger_point_injection.response"]', "none")
    page.check('[name="medications.reviewed"]')
    page.click("#assess-submit")
    page.wait_for_url(re.compile(r"/app/assessments/[0-9a-f-]+"))


def _verdict(page: Page, width: int) -> None:
    expect(page.locator("h1")).to_have_text("TPI appropriate")
    measured = check_page(
        page,
        "day-verdict",
        primary="a:has-text('Plan the procedure')",
        max_height=VERDICT_MAX_HEIGHT[width],
    )
    if width == 1366:
        # verdict, decisive reasons and the next step in the first viewport
        for sel in ("h1", "ul.reasons", "#next-step", "a:has-text('Plan the procedure')"):
            box = page.locator(sel).first.bounding_box()
            assert box is not None and box["y"] + box["height"] <= 768, (sel, box)
    assert measured.tab_stops <= 10
    page.fill("#sign-password", "correct horse battery staple")  # signing re-asks it
    page.click("button:has-text('Sign assessment')")
    expect(page.locator(".eyebrow")).to_contain_text("signed by")


def _plan(page: Page) -> str:
    page.click("a:has-text('Plan the procedure')")
    page.wait_for_url(re.compile(r"/plan$"))
    live = page.locator("#dose-live")
    expect(live).to_contain_text("needs acknowledgement")
    for box in page.locator("#ack-list input[type=checkbox]").all():
        box.check()
    expect(live).to_contain_text("ready")
    check_page(page, "day-planner", primary="#save-plan")
    # the dose panel stays in view while a volume is typed (sticky at the bottom)
    page.locator('[name="targets[0].volume_ml_per_site"]').scroll_into_view_if_needed()
    page.fill('[name="targets[0].volume_ml_per_site"]', "1")
    panel = page.locator(".dose-panel").bounding_box()
    size = page.viewport_size
    assert panel is not None and size is not None
    assert panel["y"] < size["height"] and panel["y"] + panel["height"] > 0, panel
    expect(live).to_contain_text("ready")
    page.click("#save-plan")
    page.wait_for_url(re.compile(r"/app/plans/[0-9a-f-]+"))
    check_page(page, "day-plan", primary="a:has-text('Record the session')")
    return page.url.split("?")[0]


def _session(page: Page, app: App) -> None:
    page.click("a:has-text('Record the session')")
    page.wait_for_url(re.compile(r"/sessions/new"))
    check_page(page, "day-session", primary="#session-submit")
    page.fill('[name="performed_at"]', (app.today - timedelta(days=14)).isoformat() + "T10:30")
    page.fill('[name="pre_nrs"]', "7")
    page.check('[name="consent"]')
    page.select_option('[name="guidance"]', "palpation")
    page.select_option('[name="aspiration"]', "negative")
    page.select_option('[name="twitch"]', "no")
    page.check('[name="complications"][value="none"]')
    page.click("#session-submit")
    page.wait_for_url(re.compile(r"/app/sessions/[0-9a-f-]+"))
    check_page(page, "day-session-view", primary="a:has-text('Record a follow-up')")


def _follow_up(page: Page, name: str) -> None:
    page.click("a:has-text('Record a follow-up')")
    page.wait_for_url(re.compile(r"/outcomes/new"))
    check_page(page, f"{name}-follow-up", primary="#outcome-submit")
    page.fill('[name="nrs"]', "6")
    page.fill('[name="relief_days"]', "3")
    page.click("#outcome-submit")
    page.wait_for_url(re.compile(r"/course"))
    expect(page.locator("svg.trend")).to_be_visible()


def _worksheet(page: Page) -> None:
    """The re-evaluation worksheet is a form: tick a line, record a finding, save, see it."""
    form = page.locator("#worksheet-form")
    first = form.locator(".ws-item").first
    first.locator("input[type=checkbox]").check()
    first.locator("input[type=text], input:not([type])").first.fill("needle depth re-checked")
    page.fill("#f-conclusion", "Refer for physiotherapy review")
    page.click("#worksheet-submit")
    page.wait_for_url(re.compile(r"saved=worksheet"))
    expect(page.locator("#ws-saved")).to_contain_text("saved by")
    first = page.locator("#worksheet-form .ws-item").first
    expect(first.locator("input[type=checkbox]")).to_be_checked()
    expect(page.locator("#f-conclusion")).to_have_value("Refer for physiotherapy review")


def test_clinician_day(vpage: Page, app_server: App) -> None:
    page, app = vpage, app_server
    size = page.viewport_size
    assert size is not None
    page.goto(app.at("/app/login"))
    check_page(page, "day-login", primary="#login-form button[type=submit]")
    login(page, app)
    check_page(page, "day-home", primary="main .primary")
    _new_patient(page, app)
    _assess(page, app)
    _verdict(page, size["width"])
    _plan(page)
    _session(page, app)
    _follow_up(page, "day")
    check_page(page, "day-course", primary="#worksheet-submit")
    _worksheet(page)
    page.click(".patient-bar a:has-text('episode timeline')")
    check_page(page, "day-episode", primary="main .primary")


def test_nurse_day(vpage: Page, app_server: App) -> None:
    page, app = vpage, app_server
    login(page, app, "e2e.nurse")
    check_page(page, "nurse-home", primary="main .primary")  # the worklist
    page.goto(app.at("/app/patients"))
    check_page(page, "nurse-patients", primary="#q")
    page.fill("#q", "DEMO-003")
    page.click("form[role=search] button[type=submit]")
    page.click("table.list a")
    check_page(page, "nurse-patient", primary="main table a")
    page.click("table.list a")
    episode_url = page.url.split("#")[0]
    expect(page.locator("a:has-text('New assessment')")).to_have_count(0)
    check_page(page, "nurse-episode", primary="a:has-text('Record a follow-up')")
    page.click(".ev-assessment a >> nth=0")
    # read-only for a nurse: no planning, no signing offered
    expect(page.locator("a:has-text('Plan the procedure')")).to_have_count(0)
    expect(page.locator("button:has-text('Sign assessment')")).to_have_count(0)
    check_page(page, "nurse-verdict", primary="a:has-text('episode timeline')")
    page.goto(episode_url)
    _follow_up(page, "nurse")
    check_page(page, "nurse-course", primary="a:has-text('episode timeline')")
