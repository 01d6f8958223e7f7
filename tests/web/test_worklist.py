"""The worklist home screen, the sign flow and the admin screens in Chromium (issue 17 §2 §4 §6).

Records are created through the REST API with the signed-in browser's own session (cookie
and CSRF header), as an integrator would; the pages are then used as a clinician, a nurse
and an admin would. Screenshots go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import date, timedelta
from typing import Any

from playwright.sync_api import Page, expect

from ..conftest import IDENTITY, ROOT, example
from .a11y import VIEWPORTS, check_page
from .conftest import PASSWORD, App, assert_labelled, login, shot


def _csrf(page: Page) -> str:
    return page.locator('input[name="csrf"]').first.input_value()


def _api(page: Page, app: App, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = page.request.post(
        app.at(path),
        data=json.dumps(body),
        headers={"content-type": "application/json", "X-CSRF-Token": _csrf(page)},
    )
    assert r.status == 201, r.text()
    out: dict[str, Any] = r.json()
    return out


def _plan_body() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (ROOT / "examples" / "plans" / "ql_low_back_ok.json").read_text(encoding="utf-8")
    )
    data.pop("assessment")
    return data


def _course(page: Page, app: App, first_session: date) -> dict[str, Any]:
    """Patient, episode, assessment, plan and one session, all by the signed-in clinician."""
    mrn = f"WL-{secrets.token_hex(3).upper()}"
    p = _api(
        page,
        app,
        "/api/v1/patients",
        {"mrn": mrn, "sex": "female", **IDENTITY, "birth_date": "1970-05-17"},
    )
    e = _api(page, app, f"/api/v1/patients/{p['id']}/episodes", {"regions": ["low_back"]})
    as_of = (first_session - timedelta(days=1)).isoformat()
    body = {"input": example("ql_chronic_low_back"), "as_of": as_of}
    a = _api(page, app, f"/api/v1/episodes/{e['id']}/assessments", body)
    pl = _api(page, app, f"/api/v1/assessments/{a['id']}/plans", _plan_body())
    session = {
        "performed_at": f"{first_session.isoformat()}T10:00:00+00:00",
        "plan_id": pl["id"],
        "sites": [
            {
                "muscle": "quadratus_lumborum",
                "side": "right",
                "agent": "lidocaine",
                "concentration_percent": 1.0,
                "volume_ml": 3,
            }
        ],
    }
    s = _api(page, app, f"/api/v1/episodes/{e['id']}/sessions", session)
    return {"mrn": mrn, "patient": p, "episode": e, "assessment": a, "plan": pl, "session": s}


def _kinds_of(page: Page, mrn: str) -> list[str]:
    rows = page.locator("table.worklist tbody tr", has_text=mrn)
    return [rows.nth(i).get_attribute("data-kind") or "" for i in range(rows.count())]


def test_worklist_shows_what_is_due_and_the_sign_flow(page: Page, app_server: App) -> None:
    app = app_server
    login(page, app)
    expect(page.locator("h1")).to_have_text("Worklist")
    expect(page.locator("#nav-worklist")).to_contain_text("Worklist")
    first = app.today - timedelta(days=15)  # day 15 after the first session: due (S003.12)
    c = _course(page, app, first)
    page.goto(app.at("/app/"))
    kinds = _kinds_of(page, c["mrn"])
    assert "reassessment_due" in kinds and kinds.count("unsigned") == 3, kinds
    expect(page.locator("#nav-worklist .count")).to_contain_text(re.compile(r"\(\d+\)"))
    assert_labelled(page)
    check_page(page, "worklist-home", primary="main .primary")
    shot(page, "worklist-01-home")

    # filter by status: only the unsigned items remain
    page.select_option("#wl-kind", "unsigned")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"kind=unsigned"))
    assert set(_kinds_of(page, c["mrn"])) == {"unsigned"}
    all_kinds = page.locator("table.worklist tbody tr[data-kind]")
    assert {all_kinds.nth(i).get_attribute("data-kind") for i in range(all_kinds.count())} == {
        "unsigned"
    }

    # sign the assessment from its row: a wrong password first
    row = page.locator(f'tr[data-record="{c["assessment"]["id"]}"]')
    row.get_by_role("link", name="Review and sign").click()
    expect(page.locator("h1")).to_contain_text("Assessment: signature and history")
    page.fill("#sign-password", "not the password")
    page.click("#sign-form button[type=submit]")
    expect(page.locator("#err-password")).to_contain_text("not correct")
    expect(page.locator("#sign-password")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#signed-line")).to_have_text("Not signed yet.")
    check_page(page, "record-wrong-password", primary="#sign-form button[type=submit]")
    shot(page, "worklist-02-wrong-password")
    page.fill("#sign-password", PASSWORD)
    page.click("#sign-form button[type=submit]")
    expect(page.locator("#signed-line")).to_contain_text("Signed by e2e.clinician")
    expect(page.locator("#sign-form")).to_have_count(0)  # locked: no second signature

    # an addendum on the signed record, with its author
    page.fill("#f-text", "Reviewed the imaging report afterwards: no change.")
    page.click("#addenda button[type=submit]")
    expect(page.locator("ol.addenda li")).to_contain_text("no change")
    expect(page.locator("ol.addenda li")).to_contain_text("e2e.clinician (clinician)")
    expect(page.locator("table.list tbody tr")).to_have_count(2)  # version 1, signed version 2
    assert_labelled(page)
    check_page(page, "record-signed", primary="#addenda button[type=submit]")
    shot(page, "worklist-03-signed")

    # the worklist no longer lists it; the procedure note is signed from the session page
    page.goto(app.at("/app/?scope=mine"))
    assert page.locator(f'tr[data-record="{c["assessment"]["id"]}"]').count() == 0
    page.goto(app.at(f"/app/sessions/{c['session']['id']}"))
    page.fill("#sign-password", PASSWORD)
    page.click(".sign-form button[type=submit]")
    expect(page.locator("#signature .signed")).to_contain_text("Signed by e2e.clinician")


def test_overdue_reassessment_and_void(page: Page, app_server: App) -> None:
    app = app_server
    login(page, app)
    c = _course(page, app, app.today - timedelta(days=30))  # > 4 weeks: overdue
    page.goto(app.at("/app/?kind=reassessment_overdue"))
    row = page.locator("table.worklist tbody tr", has_text=c["mrn"])
    expect(row).to_have_attribute("data-kind", "reassessment_overdue")
    expect(row).to_contain_text("S003.12")
    expect(row.get_by_role("link", name="Record the reassessment")).to_have_attribute(
        "href", f"/app/episodes/{c['episode']['id']}/outcomes/new"
    )
    # correct the unsigned note with a reason (a reason is required), then void it
    page.goto(app.at(f"/app/records/session/{c['session']['id']}"))
    page.fill("#correct-note", "Patient relaxed; no paraesthesia.")
    page.click("#correct-form button[type=submit]")
    expect(page.locator("#err-correct-reason")).to_be_visible()
    page.fill("#correct-note", "Patient relaxed; no paraesthesia.")
    page.fill("#correct-reason", "note completed after the session")
    page.click("#correct-form button[type=submit]")
    versions = page.locator("table.list tbody tr")
    expect(versions).to_have_count(2)
    expect(versions.nth(1)).to_contain_text("note completed after the session")
    expect(page.locator("#correct-note")).to_have_value("Patient relaxed; no paraesthesia.")
    check_page(page, "record-corrected", primary="#sign-password")
    page.click("#void-h ~ form button[type=submit]")
    expect(page.locator("#err-reason")).to_be_visible()  # a reason is required
    page.fill("#f-reason", "recorded on the wrong patient")
    page.click("#void-h ~ form button[type=submit]")
    expect(page.locator(".status-blocked")).to_contain_text("recorded on the wrong patient")
    page.goto(app.at("/app/?scope=all"))
    assert page.locator(f'tr[data-record="{c["session"]["id"]}"]').count() == 0


def test_nurse_is_not_offered_a_plan_signature(page: Page, app_server: App) -> None:
    app = app_server
    login(page, app)
    c = _course(page, app, app.today - timedelta(days=2))
    page.context.clear_cookies()
    login(page, app, "e2e.nurse")
    expect(page.locator("h1")).to_have_text("Worklist")
    page.goto(app.at(f"/app/records/plan/{c['plan']['id']}"))
    expect(page.locator("#sign-form")).to_have_count(0)
    expect(page.locator("#why-not-sign")).to_contain_text("nurse")
    page.goto(app.at(f"/app/assessments/{c['assessment']['id']}"))
    expect(page.locator("h2:has-text('Next step')")).to_be_visible()
    expect(page.locator("#sign-password")).to_have_count(0)  # the clinician's to sign


def test_admin_screens_show_no_clinical_content(page: Page, app_server: App) -> None:
    app = app_server
    login(page, app)
    c = _course(page, app, app.today - timedelta(days=3))
    page.context.clear_cookies()
    login(page, app, "e2e.admin")
    expect(page).to_have_url(re.compile(r"/app/admin$"))
    expect(page.locator("nav[aria-label=Main]")).not_to_contain_text("Worklist")
    page.click("a:has-text('Users and API keys')")
    name = f"wl.{secrets.token_hex(3)}"
    page.fill("#f-username", name)
    page.select_option("#f-role", "nurse")
    page.click("form[action$='/admin/users'] button[type=submit]")
    expect(page.locator("h1")).to_have_text(name)
    page.fill("#f-name", "lab interface")
    page.click("button:has-text('Issue API key')")
    expect(page.locator("#secret")).to_have_value(re.compile(r"^tp_"))
    page.click("a:has-text('Done')")
    expect(page.locator("table.list")).to_contain_text("lab interface")
    page.click("button:has-text('Deactivate')")
    expect(page.locator("main")).to_contain_text("deactivated")
    assert_labelled(page)
    check_page(page, "admin-user", primary="#f-name")
    shot(page, "worklist-04-admin-user")

    # the audit trail of the clinician's work: ids and actions, no MRN, no clinical text
    page.goto(app.at(f"/app/admin/audit?patient={c['patient']['id']}"))
    rows = page.locator("table.audit tbody tr")
    assert rows.count() >= 5
    body = page.locator("main").inner_text()
    assert "patient.create" in body and "plan.create" in body
    assert c["mrn"] not in body and "quadratus" not in body
    page.fill("#f-patient", "")
    page.fill("#f-actor", "e2e.admin")
    page.select_option("#f-outcome", "success")
    page.click("form[aria-label='Filter the audit trail'] button[type=submit]")
    expect(page.locator("table.audit tbody tr").first).to_contain_text("e2e.admin")
    page.goto(app.at("/app/admin/audit?since=not-a-date"))
    expect(page.locator("#err-since")).to_contain_text("YYYY-MM-DD")
    page.goto(app.at("/app/admin/audit"))
    check_page(page, "admin-audit", primary="#f-patient")
    assert_labelled(page)
    shot(page, "worklist-05-audit")

    # the policy: a new version with a reason (same values, so nothing else changes)
    page.goto(app.at("/app/admin/policy"))
    check_page(page, "admin-policy", primary="#f-min_conservative_trial_weeks")
    version = int(page.locator("input[name=version]").input_value())
    page.fill("#f-reason", "reviewed, no change")
    page.click("button:has-text('Save a new policy version')")
    expect(page.locator("main")).to_contain_text(f"Version {version + 1}")
    # and no clinical page for an admin
    page.goto(app.at(f"/app/records/plan/{c['plan']['id']}"))
    expect(page.locator("h1")).to_have_text("Not allowed for your role")


def test_worklist_pages_at_every_viewport(browser: Any, app_server: App) -> None:
    """The worklist, a record's signature page and the users list at 1366, 768 and 360 px."""
    app = app_server
    for width, size in VIEWPORTS.items():
        context = browser.new_context(viewport=size)
        page = context.new_page()
        login(page, app)
        c = _course(page, app, app.today - timedelta(days=16))
        page.goto(app.at("/app/?scope=all"))
        check_page(page, "worklist-all", primary="main .primary")
        page.goto(app.at(f"/app/records/plan/{c['plan']['id']}"))
        check_page(page, "record-plan", primary="#sign-password")
        context.clear_cookies()
        login(page, app, "e2e.admin")
        page.goto(app.at("/app/admin/users"))
        check_page(page, "admin-users", primary="main table a")
        context.close()
        assert width
