"""Signatures, addenda and void through the API (issue 17 §4), on SQLite and PostgreSQL.

- signing needs the signer's password again; a wrong one is refused (403), audited as
  ``denied`` and stores nothing; failures count on the account like failed sign-ins and
  past the free ones (services.auth.ACCOUNT_FREE_FAILURES) the account is throttled (429);
- a signed record refuses correction; it takes addenda and can be voided with a reason;
- who: a clinician signs their own assessment or plan, a session's performer its note
  (a nurse too), never a nurse a plan, never an admin; anonymous callers get 401.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from triggerpath.services import auth, users

from ..conftest import AS_OF, IDENTITY, example
from .conftest import PASSWORD, USED_MRNS, Service, plan_body

SITE = {"muscle": "quadratus_lumborum", "side": "left", "agent": "saline", "volume_ml": 1}


def _account(service: Service, role: str) -> tuple[str, dict[str, str]]:
    """A fresh account (so throttling one never locks the fixture's), with its bearer header."""
    name = f"{role}-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    with service.backend.uow() as uow:
        u = users.create_user(
            uow, username=name, role=role, password=PASSWORD, now=now, created_by=None
        )
        _, token = users.create_api_key(
            uow, service.settings.secret("secret_key"), u.id, name="t", now=now
        )
        uow.commit()
    return name, {"Authorization": f"Bearer {token}"}


def _as(service: Service, headers: dict[str, str], method: str, path: str, **kw: Any) -> Any:
    return service.client.request(method, path, headers=headers, **kw)


def _chain(service: Service, headers: dict[str, str]) -> dict[str, Any]:
    """Patient, episode, assessment and plan recorded by the account of ``headers``."""

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = _as(service, headers, "POST", path, json=body)
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    mrn = f"S-{uuid.uuid4().hex[:10]}"
    USED_MRNS.add(mrn)
    p = post("/api/v1/patients", {"mrn": mrn, "sex": "female", **IDENTITY})
    e = post(f"/api/v1/patients/{p['id']}/episodes", {"regions": ["low_back"]})
    body = {"input": example("ql_chronic_low_back"), "as_of": AS_OF.isoformat()}
    a = post(f"/api/v1/episodes/{e['id']}/assessments", body)
    pl = post(f"/api/v1/assessments/{a['id']}/plans", plan_body())
    return {"patient": p, "episode": e, "assessment": a, "plan": pl}


def _sign(service: Service, headers: dict[str, str], path: str, version: int, pw: str) -> Any:
    return _as(service, headers, "POST", f"{path}/sign", json={"version": version, "password": pw})


def test_wrong_password_is_refused_audited_and_stores_nothing(service: Service) -> None:
    name, h = _account(service, "clinician")
    c = _chain(service, h)
    path = f"/api/v1/assessments/{c['assessment']['id']}"
    mark = service.watermark()
    r = _sign(service, h, path, 1, "not my password at all")
    assert r.status_code == 403 and "password" in r.json()["detail"]
    after = _as(service, h, "GET", path).json()
    assert after["version"] == 1 and after["signed_at"] is None
    assert len(_as(service, h, "GET", f"{path}/history").json()["versions"]) == 1
    (event,) = [e for e in service.events_after(mark) if e.action == "assessment.sign"]
    assert (event.outcome, event.actor) == ("denied", name)
    assert str(event.record_id) == c["assessment"]["id"]
    with service.backend.uow() as uow:
        user = uow.users.by_username(name)
        assert user is not None and user.failed_logins == 1
    ok = _sign(service, h, path, 1, PASSWORD)
    assert ok.status_code == 200, ok.text
    signed = ok.json()
    assert (signed["version"], signed["signed_by"]) == (2, name) and signed["signed_at"]
    with service.backend.uow() as uow:
        user = uow.users.by_username(name)
        assert user is not None and user.failed_logins == 0  # a success clears the count


def test_repeated_wrong_passwords_throttle_the_account_like_sign_in(service: Service) -> None:
    name, h = _account(service, "clinician")
    c = _chain(service, h)
    path = f"/api/v1/plans/{c['plan']['id']}"
    free = auth.ACCOUNT_FREE_FAILURES
    codes = [_sign(service, h, path, 1, f"guess {i}").status_code for i in range(free)]
    assert codes == [403] * free
    locked = _sign(service, h, path, 1, PASSWORD)  # even the right password waits it out
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1
    assert _as(service, h, "GET", path).json()["signed_at"] is None
    # the same counter as the login form: signing in is throttled too
    creds = {"username": name, "password": PASSWORD}
    login = service.client.post("/api/v1/auth/login", json=creds)
    assert login.status_code == 429


def test_signed_record_refuses_correction_takes_addenda_and_is_voided(service: Service) -> None:
    name, h = _account(service, "clinician")
    c = _chain(service, h)
    path = f"/api/v1/plans/{c['plan']['id']}"
    # no addendum before signing: an unsigned record is corrected instead
    early = _as(service, h, "POST", f"{path}/addenda", json={"text": "too early"})
    assert early.status_code == 409 and "not signed" in early.json()["detail"]
    assert _sign(service, h, path, 1, PASSWORD).status_code == 200
    fix = {"version": 2, "reason": "change after signing", "data": plan_body()}
    r = _as(service, h, "PUT", path, json=fix)
    assert r.status_code == 409 and "signed" in r.json()["detail"]
    assert _as(service, h, "GET", path).json()["version"] == 2
    mark = service.watermark()
    add = _as(service, h, "POST", f"{path}/addenda", json={"text": "Patient tolerated well."})
    assert add.status_code == 201, add.text
    assert (add.json()["author"], add.json()["record_version"]) == (name, 2)
    listed = _as(service, h, "GET", f"{path}/addenda").json()
    assert [a["text"] for a in listed] == ["Patient tolerated well."]
    void = _as(service, h, "POST", f"{path}/retract", json={"version": 2, "reason": "wrong side"})
    assert void.status_code == 200 and void.json()["status"] == "entered_in_error"
    history = _as(service, h, "GET", f"{path}/history").json()["versions"]
    assert history[-1]["reason"] == "wrong side" and history[-1]["signed_by"] == name
    events = [(e.action, e.outcome) for e in service.events_after(mark)]
    assert ("plan.addendum", "success") in events and ("plan.retract", "success") in events
    gone = _as(service, h, "POST", f"{path}/addenda", json={"text": "after void"})
    assert gone.status_code == 409


def test_only_your_own_record_is_signed(service: Service) -> None:
    _, author = _account(service, "clinician")
    _, other = _account(service, "clinician")
    c = _chain(service, author)
    path = f"/api/v1/assessments/{c['assessment']['id']}"
    r = _sign(service, other, path, 1, PASSWORD)
    assert r.status_code == 403 and "only" in r.json()["detail"]
    assert _as(service, author, "GET", path).json()["signed_at"] is None


def test_nurse_signs_her_own_session_note_never_a_plan(service: Service) -> None:
    nurse, nh = _account(service, "nurse")
    _, ch = _account(service, "clinician")
    c = _chain(service, ch)
    assert _sign(service, nh, f"/api/v1/plans/{c['plan']['id']}", 1, PASSWORD).status_code == 403
    body = {
        "performed_at": "2026-11-23T10:00:00+00:00",
        "sites": [SITE],
    }
    s = _as(service, nh, "POST", f"/api/v1/episodes/{c['episode']['id']}/sessions", json=body)
    assert s.status_code == 201, s.text
    s = s.json()
    signed = _sign(service, nh, f"/api/v1/sessions/{s['id']}", 1, PASSWORD)
    assert signed.status_code == 200 and signed.json()["signed_by"] == nurse
    # signed: the note no longer changes
    fix = {"version": 2, "reason": "typo", "data": body}
    assert _as(service, nh, "PUT", f"/api/v1/sessions/{s['id']}", json=fix).status_code == 409


def test_unattested_session_is_attested_before_it_is_signed(service: Service) -> None:
    _, nh = _account(service, "nurse")
    clinician, ch = _account(service, "clinician")
    c = _chain(service, ch)
    body = {
        "performed_at": "2026-11-24T10:00:00+00:00",
        "performer": clinician,
        "sites": [SITE],
    }
    s = _as(service, nh, "POST", f"/api/v1/episodes/{c['episode']['id']}/sessions", json=body)
    assert s.status_code == 201, s.text
    s = s.json()
    path = f"/api/v1/sessions/{s['id']}"
    assert _sign(service, nh, path, 1, PASSWORD).status_code == 403  # not the performer
    early = _sign(service, ch, path, 1, PASSWORD)
    assert early.status_code == 422 and "attest" in early.text
    assert _as(service, ch, "POST", f"{path}/attest", json={"version": 1}).status_code == 200
    assert _sign(service, ch, path, 2, PASSWORD).status_code == 200


@pytest.mark.parametrize("role", ["admin", "viewer", None])
def test_admin_viewer_and_anonymous_cannot_sign_or_add(service: Service, role: str | None) -> None:
    _, ch = _account(service, "clinician")
    c = _chain(service, ch)
    path = f"/api/v1/assessments/{c['assessment']['id']}"
    headers = service.auth(role) if role else {}
    expected = 401 if role is None else 403
    assert _sign(service, headers, path, 1, PASSWORD).status_code == expected
    add = _as(service, headers, "POST", f"{path}/addenda", json={"text": "an addendum"})
    assert add.status_code == expected
    read = _as(service, headers, "GET", f"{path}/addenda").status_code
    assert read == {"admin": 403, "viewer": 200, None: 401}[role]  # admins see no clinical text
