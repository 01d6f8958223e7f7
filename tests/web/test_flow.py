"""End to end in the browser: a clinician runs the whole pathway without a terminal.

login -> new patient -> assessment on the body map (an invalid value is shown beside its
field and nothing typed is lost) -> verdict with reasons and statement ids -> planner with
the live dose check (remaining allowance; blocked when over the limit) -> consent, after-care,
exercise sheet and procedure note -> session and follow-up -> trend chart -> re-evaluation
worksheet on a failing course. Screenshots: test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from .conftest import (
    TABLET,
    App,
    assert_labelled,
    assert_no_horizontal_scroll,
    login,
    shot,
)

pytestmark = pytest.mark.browser
STATEMENT_ID = re.compile(r"S\d{3}\.\d{2}")


def tri(page: Page, name: str, value: str) -> None:
    page.check(f'input[type=radio][name="{name}"][value="{value}"]')


def all_tri(page: Page, prefix: str, value: str) -> None:
    page.evaluate(
        """([prefix, value]) => {
          for (const el of document.querySelectorAll('input[type=radio]')) {
            if (el.name.startsWith(prefix) && el.value === value) el.checked = true;
          }
        }""",
        [prefix, value],
    )


def marker(page: Page, muscle: str, side: str) -> str:
    return f'svg.bodymap circle[data-muscle="{muscle}"][data-side="{side}"]'


def test_complete_pathway(page: Page, app_server: App) -> None:
    app = app_server
    mrn = f"E2E-{secrets.token_hex(3).upper()}"

    # ---- login (keyboard only: the username field has focus, Tab, Enter)
    page.goto(app.at("/app/"))
    expect(page).to_have_url(re.compile(r"/app/login\?next="))
    assert_labelled(page)
    shot(page, "01-login")
    expect(page.locator("#username")).to_be_focused()
    page.keyboard.type("e2e.clinician")
    page.keyboard.press("Tab")
    page.keyboard.type("correct horse battery staple")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/app/$"))
    expect(page.locator("h1")).to_have_text("Worklist")  # the home screen (issue 17 §2)
    page.click("nav[aria-label=Main] a:has-text('Patients')")
    expect(page.locator("h1")).to_have_text("Patients")
    expect(page.locator("table.list")).to_contain_text("DEMO-001")
    shot(page, "02-patients")

    # ---- find: search by part of the MRN, by name, by date of birth
    page.fill("#q", "demo-00")
    page.click("form[role=search] button[type=submit]")
    expect(page.locator("table.list tbody tr")).to_have_count(7)
    page.fill("#q", "calloway")
    page.click("form[role=search] button[type=submit]")
    expect(page.locator("table.list tbody tr")).to_have_count(1)
    expect(page.locator("table.list tbody tr")).to_contain_text("CALLOWAY")

    # ---- create a patient and an episode
    page.click("a.button.primary:has-text('New patient')")
    assert_labelled(page)
    page.fill('[name="family_name"]', "Flowtest")
    page.fill('[name="given_name"]', "Wilma Ann")
    page.fill('[name="birth_date"]', "1968-04-09")
    page.select_option('[name="sex"]', "female")
    page.fill('[name="mrn"]', mrn)
    page.check('input[name="regions"][value="low_back"]')
    page.fill('[name="onset"]', (app.today - timedelta(weeks=60)).isoformat())
    page.click("button:has-text('Create and assess')")
    page.wait_for_url(re.compile(r"/assess"))

    # ---- assessment form, grouped like an examination
    legends = page.locator("fieldset.section > legend").all_inner_texts()
    assert legends == [
        "1. Patient",
        "2. History",
        "3. Red flags",
        "4. Trigger point examination",
        "5. Other pain generators",
        "6. Contraindications",
        "7. Conservative care tried",
        "8. Medications",
    ]
    assert page.input_value('[name="patient.age_years"]') == str(app.today.year - 1968)
    assert_labelled(page)
    page.fill('[name="patient.weight_kg"]', "72kg")  # invalid on purpose
    page.fill('[name="patient.height_cm"]', "164")
    tri(page, "patient.pregnant", "no")
    page.fill('[name="as_of"]', (app.today - timedelta(days=21)).isoformat())
    page.fill('[name="pain.nrs"]', "7")
    tri(page, "pain.constant", "yes")
    page.select_option('[name="pain.daily_activity_impact"]', "moderate")
    tri(page, "pain.widespread", "no")
    tri(page, "pain.headache", "no")
    page.check('input[name="causes"][value="posture"]')
    all_tri(page, "red_flags.", "no")
    all_tri(page, "pain_generators.", "no")
    all_tri(page, "contraindications.", "no")
    # place the trigger point on the body map, with the keyboard
    page.focus(marker(page, "quadratus_lumborum", "right"))
    page.keyboard.press("Enter")
    expect(page.locator("#muscle-info")).to_contain_text("Quadratus lumborum")
    expect(page.locator("#muscle-info .zones li").first).to_be_visible()
    row = page.locator(".tp-card").filter(
        has=page.locator('select[name$=".muscle"] option:checked[value="quadratus_lumborum"]')
    )
    expect(row).to_have_count(1)
    index = row.get_attribute("data-index")
    tp = f"trigger_points[{index}]"
    assert page.input_value(f'[name="{tp}.side"]') == "right"
    for finding in ("taut_band", "hypersensitive_spot", "recognised_pain", "referred_pain"):
        tri(page, f"{tp}.{finding}", "yes")
    tri(page, f"{tp}.local_twitch_response", "yes")
    tri(page, f"{tp}.reduced_rom", "yes")
    expect(page.locator(marker(page, "quadratus_lumborum", "right"))).to_have_class(
        re.compile("selected")
    )
    page.check('[name="conservative_care.recorded"]')
    page.fill('[name="conservative_care.physical_therapy.weeks"]', "8")
    page.select_option('[name="conservative_care.physical_therapy.response"]', "partial")
    page.check('[name="medications.reviewed"]')
    page.fill('[name="medications.text"]', "naproxen 500 mg")
    page.click("button:has-text('Assess')")

    # the invalid weight: message beside the field, everything typed kept
    weight_field = page.locator(".field.has-error", has=page.locator('[name="patient.weight_kg"]'))
    expect(weight_field.locator(".error")).to_contain_text("number")
    expect(page.locator("#error-summary")).to_be_visible()
    assert page.input_value('[name="patient.weight_kg"]') == "72kg"
    assert page.input_value('[name="patient.height_cm"]') == "164"
    assert page.input_value('[name="pain.nrs"]') == "7"
    assert page.input_value('[name="medications.text"]') == "naproxen 500 mg"
    assert page.is_checked(f'input[name="{tp}.taut_band"][value="yes"]')
    assert page.is_checked('input[name="causes"][value="posture"]')
    assert page.input_value(f'[name="{tp}.muscle"]') == "quadratus_lumborum"
    shot(page, "03-assessment-invalid")
    page.fill('[name="patient.weight_kg"]', "72")
    page.click("button:has-text('Assess')")
    page.wait_for_url(re.compile(r"/app/assessments/[0-9a-f-]+"))

    # ---- recommendation: verdict first, reasons with paraphrased statements and their ids
    headings = page.locator("main h1, main h2").all_inner_texts()
    assert headings[0] == "TPI appropriate"
    assert headings.index("Reasons") > 0
    reasons = page.locator("ul.reasons > li")
    assert reasons.count() >= 1
    for i in range(reasons.count()):
        # each reason cites compact statement-id links; the paraphrase is listed once below
        link = reasons.nth(i).locator("a.sid").first
        sid = (link.text_content() or "").strip()
        assert STATEMENT_ID.fullmatch(sid), sid
        if not link.is_visible():
            continue  # a folded "more reasons" line
        link.click()
        expect(page.locator("details#sources")).to_have_attribute("open", "")
        paraphrase = page.locator(f'dt[id="st-{sid}"] + dd').inner_text()
        assert len(paraphrase) > 20, paraphrase
    assert page.locator("dl.statements dt").count() == len(
        set(page.locator("dl.statements dt").all_inner_texts())
    )  # each paraphrase once
    expect(page.locator("h2:has-text('Next step')")).to_be_visible()
    assert_labelled(page)
    shot(page, "04-recommendation")
    page.fill("#sign-password", "correct horse battery staple")  # signing re-asks it
    page.click("button:has-text('Sign assessment')")
    expect(page.locator(".eyebrow")).to_contain_text("signed by e2e.clinician")

    # ---- planner: targets on the body map, live dose check with the remaining allowance
    page.click("a:has-text('Plan the procedure')")
    page.wait_for_url(re.compile(r"/plan$"))
    live = page.locator("#dose-live")
    # the failure risk factors recorded (constant pain, high impact, long duration) are
    # cautions the clinician acknowledges before the plan is ready (S004.04)
    expect(live).to_contain_text("needs acknowledgement")
    acks = page.locator("#ack-list input[type=checkbox]")
    expect(acks.first).to_be_visible()
    for box in acks.all():
        box.check()
    expect(live).to_contain_text("ready")
    expect(live.locator("td.remaining").first).to_contain_text("mL more")
    # a muscle without a confirmed trigger point cannot be a target (S003.11)
    page.click(marker(page, "gluteus_medius", "right"))
    expect(page.locator(".target-row")).to_have_count(2)
    expect(live).to_contain_text("not a trigger point confirmed")
    expect(page.locator("#save-plan")).to_be_disabled()
    page.click(marker(page, "gluteus_medius", "right"))  # and off again
    expect(page.locator(".target-row")).to_have_count(1)
    expect(live).to_contain_text("ready")
    expect(page.locator("#save-plan")).to_be_enabled()
    assert_labelled(page)
    shot(page, "05-planner-ready")
    remaining_ok = live.locator("td.remaining").first.inner_text()
    # too much: 2% lidocaine, 10 sites of 5 mL -> over the maximum: blocked, cannot be saved
    page.fill('[name="injectate.solutions[0].percent"]', "2")
    page.fill('[name="targets[0].sites"]', "10")
    page.fill('[name="targets[0].volume_ml_per_site"]', "5")
    expect(live).to_contain_text("blocked")
    expect(live.locator(".dose-exceeds")).to_be_visible()
    expect(page.locator("#save-plan")).to_be_disabled()
    shot(page, "06-planner-blocked")
    page.fill('[name="injectate.solutions[0].percent"]', "1")
    page.fill('[name="targets[0].sites"]', "3")
    page.fill('[name="targets[0].volume_ml_per_site"]', "1")
    expect(live).to_contain_text("ready")
    assert live.locator("td.remaining").first.inner_text() != remaining_ok  # 3 sites now
    expect(page.locator("#save-plan")).to_be_enabled()
    page.click("#save-plan")
    page.wait_for_url(re.compile(r"/app/plans/[0-9a-f-]+"))
    plan_url = page.url.split("?")[0]
    expect(page.locator(".status")).to_contain_text("ready")
    expect(page.locator("svg.bodymap .hazard-pleura")).to_have_count(1)
    shot(page, "07-plan")

    # ---- documents (HTML to print, and PDF)
    consent = page.context.new_page()
    consent.goto(plan_url + "/documents/consent")
    expect(consent.locator("h1")).to_have_text("Consent for trigger point injection")
    for text in ("How it may help", "Risks", "pneumothorax", "Other choices", "What to expect"):
        expect(consent.locator("body")).to_contain_text(text)
    shot(consent, "08-consent")
    consent.goto(plan_url + "/documents/aftercare")
    for text in ("24–48 hours", "15–20 minutes", "infection", "ringing in the ears"):
        expect(consent.locator("body")).to_contain_text(text)
    shot(consent, "09-aftercare")
    consent.goto(plan_url + "/documents/exercises")
    expect(consent.locator("body")).to_contain_text("quadratus lumborum")
    assert consent.locator("svg.figure").count() >= 5
    shot(consent, "10-exercises")
    pdf = page.request.get(plan_url + "/documents/consent?format=pdf")
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body()[:5] == b"%PDF-"
    consent.close()
    # keep the signed consent's PDF with the record: listed on the patient page
    page.locator(".doc-list li", has_text="Informed consent").locator("button").click()
    page.wait_for_url(re.compile(r"kept=consent"))
    page.click(".patient-bar a:has-text('patient')")
    kept = page.locator(".doc-list a", has_text="Consent for trigger point injection")
    expect(kept).to_have_count(1)
    stored = page.request.get(app.at(kept.get_attribute("href") or ""))
    assert stored.ok and stored.body()[:5] == b"%PDF-"
    page.goto(plan_url)

    # ---- record the session (two weeks ago), then the procedure note
    page.click("a:has-text('Record the session')")
    page.wait_for_url(re.compile(r"/sessions/new"))
    when = (app.today - timedelta(days=14)).isoformat() + "T10:30"
    page.fill('[name="performed_at"]', when)
    page.fill('[name="pre_nrs"]', "7")
    page.check('[name="consent"]')
    assert page.input_value('[name="sites[0].muscle"]') == "quadratus_lumborum"
    # prefilled from the plan's technique card (QL: ultrasound, 28 G, 60-90 mm), no defaults
    assert page.input_value('[name="guidance"]') == "ultrasound"
    assert page.input_value('[name="needle_gauge"]') == "28"
    assert page.input_value('[name="needle_length_mm"]') == "90"
    assert page.input_value('[name="aspiration"]') == ""
    expect(page.locator("#technique-cards")).to_contain_text("28 G, 60-90 mm")
    page.select_option('[name="guidance"]', "palpation")
    page.select_option('[name="aspiration"]', "negative")
    page.select_option('[name="twitch"]', "no")
    page.check('[name="complications"][value="none"]')
    assert_labelled(page)
    shot(page, "11-session")
    page.click("button:has-text('Record session')")
    page.wait_for_url(re.compile(r"/app/sessions/[0-9a-f-]+"))
    note = page.request.get(page.url.split("?")[0] + "/note")
    assert note.ok
    body = note.text()
    assert "CPT <strong>20552</strong>" in body  # one muscle: 20552 (AMA CPT 20552-20553)
    assert "Aspiration" in body and "negative before every injection" in body
    # 1% = 10 mg/mL: 3 sites of 1 mL into quadratus lumborum = 30 mg
    assert "Lidocaine 30 mg" in body
    shot(page, "12-session-view")

    # ---- follow-up today: little relief -> failing course -> re-evaluation worksheet
    page.click("a:has-text('Record a follow-up')")
    page.fill('[name="nrs"]', "6")
    page.fill('[name="relief_days"]', "3")
    page.check('input[name="physical_therapy"][value="no"]')
    page.check('input[name="home_exercise"][value="yes"]')
    for i, v in enumerate([3, 2, 3, 2, 3, 3, 2, 2, 2, 2]):
        page.fill(f'[name="odi[{i}]"]', str(v))
    assert_labelled(page)
    page.click("button:has-text('Record follow-up')")
    page.wait_for_url(re.compile(r"/course"))
    chart = page.locator("svg.trend")
    expect(chart).to_be_visible()
    expect(chart.locator("path.series-nrs")).to_have_count(1)
    expect(chart.locator("path.series-odi")).to_have_count(1)
    expect(chart.locator("line.session")).to_have_count(1)
    expect(page.locator("#worksheet")).to_be_visible()
    expect(page.locator("#worksheet")).to_contain_text("Technical review")
    expect(page.locator(".verdict-box")).to_contain_text("Non-responder")
    shot(page, "13-course-worksheet")
    summary = page.request.get(page.url.split("/course")[0] + "/reevaluation?format=pdf")
    assert summary.ok and summary.body()[:5] == b"%PDF-"

    # ---- the same pages at tablet width: usable, no sideways scrolling
    course_url = page.url
    page.set_viewport_size(TABLET)
    assert_no_horizontal_scroll(page)
    shot(page, "14-course-tablet")
    page.goto(plan_url)
    assert_no_horizontal_scroll(page)
    shot(page, "15-plan-tablet")
    page.click(".patient-bar a:has-text('episode timeline')")
    page.click("a:has-text('New assessment')")
    assert_no_horizontal_scroll(page)
    shot(page, "16-assessment-tablet")
    page.go_back()
    page.click(".ev-assessment a >> nth=0")
    page.click("a:has-text('Plan the procedure')")
    expect(page.locator("#dose-live")).to_contain_text("mL more")
    assert_no_horizontal_scroll(page)
    shot(page, "17-planner-tablet")

    # ---- print stylesheet: navigation and buttons do not print
    page.goto(course_url)
    page.emulate_media(media="print")
    expect(page.locator("header.top")).to_be_hidden()
    expect(page.locator(".actions").first).to_be_hidden()
    expect(page.locator("svg.trend")).to_be_visible()
    page.emulate_media(media="screen")


def test_keyboard_only_form_and_body_map(page: Page, app_server: App) -> None:
    """Tab through the new-patient form with the keyboard alone, then place a trigger point."""
    login(page, app_server)
    page.goto(app_server.at("/app/patients/new"))
    page.focus('[name="family_name"]')
    page.keyboard.type("Keyboard")
    page.keyboard.press("Tab")
    page.keyboard.type("Kay")
    page.keyboard.press("Tab")  # date of birth (Chromium en-US: month, day, year)
    page.keyboard.type("03041975")
    assert page.input_value('[name="birth_date"]') == "1975-03-04"
    page.keyboard.press("Tab")  # the date field's calendar button
    page.keyboard.press("Tab")  # sex (select, no default): choose female
    assert page.evaluate("() => document.activeElement.name") == "sex"
    page.keyboard.type("f")
    assert page.input_value('[name="sex"]') == "female"
    page.keyboard.press("Tab")
    page.keyboard.type(f"KB-{secrets.token_hex(3)}")
    page.keyboard.press("Tab")  # first region: neck
    page.keyboard.press("Tab")  # upper back
    page.keyboard.press("Tab")  # mid back
    page.keyboard.press("Tab")  # low back
    page.keyboard.press("Space")
    assert page.is_checked('input[name="regions"][value="low_back"]')
    page.keyboard.press("Enter")  # submits the form
    page.wait_for_url(re.compile(r"/assess"))
    # markers are reachable with Tab and act on Enter
    page.focus(marker(page, "piriformis", "left"))
    page.keyboard.press("Enter")
    expect(page.locator(marker(page, "piriformis", "left"))).to_have_attribute(
        "aria-pressed", "true"
    )
    shot(page, "18-keyboard-body-map")


def test_no_data_lost_on_session_timeout(page: Page, app_server: App) -> None:
    """The session expires while a form is filled in: after signing in again the draft is back."""
    login(page, app_server)
    page.goto(app_server.at("/app/patients"))
    page.fill("#q", "DEMO-002")
    page.click("form[role=search] button[type=submit]")
    page.click("table.list a")
    page.click("table.list a")
    page.click("a:has-text('Record a follow-up')")
    form_url = page.url.split("?")[0]
    page.fill('[name="nrs"]', "4")
    page.fill('[name="relief_days"]', "12")
    page.context.clear_cookies()  # the session is gone (timeout or sign-out elsewhere)
    page.click("button:has-text('Record follow-up')")
    page.wait_for_url(re.compile(r"/app/login\?next="))
    page.fill("#username", "e2e.clinician")
    page.fill("#password", "correct horse battery staple")
    page.click("#login-form button[type=submit]")
    page.wait_for_url(form_url)
    expect(page.locator("#draft-note")).to_contain_text("Restored your unsent draft")
    assert page.input_value('[name="nrs"]') == "4"
    assert page.input_value('[name="relief_days"]') == "12"
    shot(page, "19-draft-restored")


def test_roles_viewer_reads_but_cannot_plan(page: Page, app_server: App) -> None:
    login(page, app_server, "e2e.viewer")
    page.goto(app_server.at("/app/patients"))
    page.fill("#q", "DEMO-001")
    page.click("form[role=search] button[type=submit]")
    page.click("table.list a")
    page.click("table.list a")
    expect(page.locator("a:has-text('New assessment')")).to_have_count(0)
    page.goto(page.url.split("?")[0] + "/assess")  # reading the form is allowed
    # ... but no Assess button is offered, and the page says why
    expect(page.locator("button:has-text('Assess')")).to_have_count(0)
    expect(page.locator("#role-note")).to_contain_text("for a clinician")
    page.fill('[name="pain.nrs"]', "5")
    page.evaluate("() => document.querySelector('form[data-draft]').submit()")  # forced
    expect(page.locator("h1")).to_have_text("Not allowed for your role")
    expect(page.locator("main")).to_contain_text("cannot record an assessment")
    expect(page.locator("main")).not_to_contain_text("assessment.create")


def test_roles_nurse_records_follow_ups_but_does_not_assess(page: Page, app_server: App) -> None:
    login(page, app_server, "e2e.nurse")
    page.goto(app_server.at("/app/patients"))
    page.fill("#q", "DEMO-003")
    page.click("form[role=search] button[type=submit]")
    page.click("table.list a")
    page.click("table.list a")
    expect(page.locator("a:has-text('New assessment')")).to_have_count(0)
    expect(page.locator("a:has-text('Record a follow-up')")).to_have_count(1)
    page.click(".ev-assessment a >> nth=0")
    expect(page.locator("a:has-text('Plan the procedure')")).to_have_count(0)
    expect(page.locator("button:has-text('Sign assessment')")).to_have_count(0)
    page.go_back()
    page.click("a:has-text('Record a follow-up')")
    page.fill('[name="nrs"]', "3")
    page.click("button:has-text('Record follow-up')")
    page.wait_for_url(re.compile(r"/course"))
    expect(page.locator("details table")).to_contain_text("3")
