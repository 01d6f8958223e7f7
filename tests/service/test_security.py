"""Issue 14 (OWASP ASVS 4.0.3 level 2): separation of duties, authentication, sessions,
headers, input at the edge, audit as evidence, production refusals, on both backends.

Each test names the ASVS requirement(s) it proves; ``docs/security/asvs.md`` maps them back.
"""

from __future__ import annotations

import logging
import secrets
import stat
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from triggerpath.adapters import audit_chain, database
from triggerpath.config import Settings
from triggerpath.entrypoints.api import create_app
from triggerpath.errors import InvalidInput
from triggerpath.services import auth, passwords, users
from triggerpath.services.model import Actor

from .conftest import PASSWORD, Backend, Service, make_service, make_settings

NEW_PASSWORD = "violet lantern drifts over seven quiet hills"
STRONG = "Hq3vZ8pL0xWm2Rt7YbN4cK9sD1fG6jA5eU-oI_yTnVwXrQzPlMkJhBgFdSaE3uC7"


@pytest.fixture
def fresh_guard(service: Service) -> Iterator[auth.LoginGuard]:
    """A login guard of this test's own, so throttling here and elsewhere stays apart."""
    state = service.app.state.tp
    old = state.guard
    state.guard = auth.LoginGuard(refuse_dev_only=True)
    yield state.guard
    state.guard = old


def _person(service: Service, role: str = "clinician", password: str = PASSWORD) -> dict[str, Any]:
    body = {"username": f"p-{uuid.uuid4().hex[:10]}", "role": role, "password": password}
    return service.ok(service.post("/api/v1/users", "admin", json=body))


def _login(service: Service, username: str, password: str) -> Any:
    return service.client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )


def _jwt(service: Service, username: str, password: str = PASSWORD) -> dict[str, str]:
    r = service.client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _me(service: Service, headers: dict[str, str]) -> int:
    code: int = service.client.get("/api/v1/auth/me", headers=headers).status_code
    return code


# --------------------------------------------------------------------------- §1 duties
def test_admin_cannot_change_own_role_or_deactivate_self(service: Service) -> None:
    """ASVS 1.4.x / 4.1.3: no self-service privilege change."""
    me = service.get("/api/v1/auth/me", "admin").json()
    listed = service.get("/api/v1/users?limit=200", "admin").json()["items"]
    my_id = next(u["id"] for u in listed if u["username"] == me["username"])
    r = service.request("PATCH", f"/api/v1/users/{my_id}", "admin", json={"role": "clinician"})
    assert r.status_code == 403 and "own role" in r.json()["detail"]
    r = service.request("PATCH", f"/api/v1/users/{my_id}", "admin", json={"active": False})
    assert r.status_code == 403


def test_admin_cannot_set_a_password(service: Service, fresh_guard: auth.LoginGuard) -> None:
    """The issue's first finding: an admin-set password never yields a working token."""
    u = _person(service)
    r = service.request(
        "PATCH", f"/api/v1/users/{u['id']}", "admin", json={"password": "admin chosen secret 1"}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "password"
    assert _login(service, u["username"], "admin chosen secret 1").status_code == 401


def test_reset_token_is_one_time_and_the_account_cannot_act_until_used(
    service: Service, fresh_guard: auth.LoginGuard
) -> None:
    """ASVS 2.5.1/2.5.4/3.3.3: a reset ends the account's credentials; a one-time token."""
    u = _person(service)
    before = _jwt(service, u["username"])
    mark = service.watermark()
    r = service.post(f"/api/v1/users/{u['id']}/password-reset", "admin")
    assert r.status_code == 201, r.text
    token = r.json()["reset_token"]
    (event,) = [e for e in service.events_after(mark) if e.action == "user.reset_password"]
    assert str(event.record_id) == u["id"] and event.actor == service.usernames["admin"]
    assert _me(service, before) == 401  # the old token ended
    assert _login(service, u["username"], PASSWORD).status_code == 401  # the old password too
    weak = {"reset_token": token, "new_password": "password1234"}
    assert service.client.post("/api/v1/auth/password-reset", json=weak).status_code == 422
    good = {"reset_token": token, "new_password": NEW_PASSWORD}
    assert service.client.post("/api/v1/auth/password-reset", json=good).status_code == 204
    assert service.client.post("/api/v1/auth/password-reset", json=good).status_code == 401
    assert _me(service, _jwt(service, u["username"], NEW_PASSWORD)) == 200


def test_last_active_admin_cannot_be_removed(tmp_path: Path) -> None:
    """Separation of duties leaves the clinic an admin (service rule, fresh database)."""
    engine = database.make_engine(f"sqlite:///{tmp_path / 'one-admin.db'}")
    database.upgrade(engine)
    now = datetime.now(UTC)
    with database_uow(engine) as uow:
        only = users.create_user(
            uow, username="only-admin", role="admin", password=PASSWORD, now=now, created_by=None
        )
        other = Actor("someone-else", "admin")
        with pytest.raises(Exception, match="last active admin"):
            users.update_user(uow, only.id, actor=other, active=False)
        with pytest.raises(Exception, match="last active admin"):
            users.update_user(uow, only.id, actor=other, role="viewer")
    engine.dispose()


def database_uow(engine: sa.Engine) -> Any:
    from triggerpath.bootstrap import uow_factory

    return uow_factory(engine)()


def test_admin_has_no_clinical_permissions() -> None:
    """ASVS 4.1.3: least privilege; the admin role reads or writes no patient data."""
    clinical = [a for a in auth.PERMISSIONS if a.split(".")[0] not in ("user", "audit", "policy")]
    assert clinical and not [a for a in clinical if auth.allowed("admin", a)]


# --------------------------------------------------------------------------- §2 authentication
@pytest.mark.parametrize(
    "candidate",
    ["password1234", "P@ssw0rd2024!", "qwertyuiop12", "aaaaaaaaaaaaaaa", "123456789012", "short"],
)
def test_common_breached_and_short_passwords_are_refused(candidate: str) -> None:
    """ASVS 2.1.1, 2.1.7."""
    assert passwords.why_weak(candidate) is not None


def test_long_passphrases_with_spaces_and_unicode_are_accepted() -> None:
    """ASVS 2.1.3/2.1.4/2.1.9: no composition rules, spaces and any Unicode allowed."""
    assert passwords.why_weak(NEW_PASSWORD) is None
    assert passwords.why_weak("Grüße aus Köln, 🌧 immer noch") is None
    assert passwords.why_weak("x" * 129) is not None  # 2.1.2: at most 128


def test_password_change_ends_every_session_and_token(
    service: Service, fresh_guard: auth.LoginGuard
) -> None:
    """ASVS 2.1.5/2.1.6/3.3.3: change needs the current password; old credentials end."""
    u = _person(service)
    old_jwt = _jwt(service, u["username"])
    login = _login(service, u["username"], PASSWORD)
    cookie = {"Cookie": f"{auth.SESSION_COOKIE}={login.cookies[auth.SESSION_COOKIE]}"}
    service.client.cookies.clear()
    body = {"current_password": "wrong wrong wrong", "new_password": NEW_PASSWORD}
    r = service.client.post("/api/v1/auth/password", headers=old_jwt, json=body)
    assert r.status_code == 401
    body = {"current_password": PASSWORD, "new_password": "password12345"}
    r = service.client.post("/api/v1/auth/password", headers=old_jwt, json=body)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "new_password"
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    r = service.client.post("/api/v1/auth/password", headers=old_jwt, json=body)
    assert r.status_code == 204, r.text
    assert _me(service, old_jwt) == 401
    assert _me(service, cookie) == 401
    assert _me(service, _jwt(service, u["username"], NEW_PASSWORD)) == 200


def test_fifteen_wrong_passwords_are_throttled_with_retry_after(
    service: Service, fresh_guard: auth.LoginGuard
) -> None:
    """ASVS 2.2.1: after 5 failures the account backs off (429 + Retry-After), even for
    the right password, without computing a hash."""
    u = _person(service)
    codes = [
        _login(service, u["username"], f"wrong {i} wrong wrong").status_code for i in range(15)
    ]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    r = _login(service, u["username"], PASSWORD)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.headers["content-type"].startswith("application/problem+json")


def test_failures_from_one_address_across_accounts_are_throttled(
    service: Service, fresh_guard: auth.LoginGuard
) -> None:
    """ASVS 2.2.1: credential stuffing over many accounts backs off per client address."""
    codes = [
        _login(service, f"nobody-{i}-{uuid.uuid4().hex[:6]}", "wrong wrong wrong").status_code
        for i in range(auth.ADDRESS_FREE_FAILURES + 2)
    ]
    assert codes[: auth.ADDRESS_FREE_FAILURES] == [401] * auth.ADDRESS_FREE_FAILURES
    assert codes[-1] == 429


def test_concurrent_password_hashes_are_bounded() -> None:
    """A burst cannot exhaust memory: beyond the slots, callers wait then get Busy (503)."""
    gate = auth.HashGate(slots=1, wait_seconds=0.05)
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with gate.slot():
            entered.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    entered.wait(5)
    with pytest.raises(auth.Busy):
        auth.verify_password(None, "whatever", gate)
    release.set()
    t.join()
    assert auth.verify_password(None, "whatever", gate) is False  # a slot is free again


def test_web_login_needs_its_csrf_token(service: Service, fresh_guard: auth.LoginGuard) -> None:
    """ASVS 4.2.2 (login CSRF): a cross-site form post cannot sign the browser in."""
    u = _person(service)
    form = {"username": u["username"], "password": PASSWORD, "next": "/app/"}
    fresh = TestClient(service.app, base_url="https://testserver", raise_server_exceptions=False)
    r = fresh.post("/app/login", data=form, follow_redirects=False)
    assert r.status_code == 403 and auth.SESSION_COOKIE not in r.cookies
    page = fresh.get("/app/login")
    token = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    r = fresh.post(
        "/app/login",
        data={**form, "csrf": token},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    page = fresh.get("/app/login")  # each refusal hands out a fresh pair
    token = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    r = fresh.post("/app/login", data={**form, "csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.cookies.get(auth.SESSION_COOKIE)


# --------------------------------------------------------------------------- §3 sessions
def test_cookie_replayed_after_logout_is_refused(
    service: Service, fresh_guard: auth.LoginGuard
) -> None:
    """ASVS 3.3.1: logout ends the session server-side (and every other one of the user)."""
    u = _person(service)
    other_device = _jwt(service, u["username"])
    r = _login(service, u["username"], PASSWORD)
    cookie = {"Cookie": f"{auth.SESSION_COOKIE}={r.cookies[auth.SESSION_COOKIE]}"}
    service.client.cookies.clear()
    assert _me(service, cookie) == 200
    csrf = {auth.CSRF_HEADER: r.json()["csrf_token"]}
    out = service.client.post("/api/v1/auth/logout", headers={**cookie, **csrf})
    assert out.status_code == 204
    service.client.cookies.clear()
    assert _me(service, cookie) == 401
    assert _me(service, other_device) == 401


def test_role_change_and_deactivation_end_tokens(
    service: Service, fresh_guard: auth.LoginGuard
) -> None:
    """ASVS 3.3.3-style: a demoted or deactivated user's tokens end at once."""
    u = _person(service)
    token = _jwt(service, u["username"])
    r = service.request("PATCH", f"/api/v1/users/{u['id']}", "admin", json={"role": "viewer"})
    assert r.status_code == 200
    assert _me(service, token) == 401
    token = _jwt(service, u["username"])
    r = service.request("PATCH", f"/api/v1/users/{u['id']}", "admin", json={"active": False})
    assert r.status_code == 200 and _me(service, token) == 401


def test_idle_session_ends(service: Service, fresh_guard: auth.LoginGuard) -> None:
    """ASVS 3.3.2: an idle session ends (default 15 minutes); an active one continues."""
    u = _person(service)
    r = _login(service, u["username"], PASSWORD)
    cookie = {"Cookie": f"{auth.SESSION_COOKIE}={r.cookies[auth.SESSION_COOKIE]}"}
    service.client.cookies.clear()
    state = service.app.state.tp
    start = datetime.now(UTC)
    try:
        state.clock = lambda: start + timedelta(minutes=10)
        assert _me(service, cookie) == 200  # 10 min idle: fine, and it counts as activity
        state.clock = lambda: start + timedelta(minutes=24)
        assert _me(service, cookie) == 200  # 14 min after the last use
        state.clock = lambda: start + timedelta(minutes=40)
        assert _me(service, cookie) == 401  # 16 min idle
    finally:
        state.clock = lambda: datetime.now(UTC)


# --------------------------------------------------------------------------- §4 headers
def test_patient_responses_are_not_cached_and_carry_security_headers(service: Service) -> None:
    """ASVS 8.2.1, 14.4.3-14.4.7."""
    p = service.patient()
    for path in (f"/api/v1/patients/{p['id']}", "/api/v1/patients", "/app/login"):
        r = service.get(path)
        assert r.headers["cache-control"] == "no-store", path
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        script = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
        assert "unsafe-inline" not in script
    assert "strict-transport-security" not in r.headers  # http here
    https = TestClient(service.app, base_url="https://testserver")
    assert "max-age=" in https.get("/healthz").headers["strict-transport-security"]


def test_templates_have_no_inline_scripts_or_handlers() -> None:
    """ASVS 14.4.3: the CSP can forbid inline script because the pages use none."""
    import re

    root = Path(__file__).resolve().parents[2] / "src" / "triggerpath"
    inline = re.compile(r"<script(?![^>]*\b(src|type=\"application/json\"))|\son[a-z]+=", re.I)
    for template in root.glob("**/templates/*.html"):
        assert not inline.search(template.read_text(encoding="utf-8")), template


def test_cors_is_closed_by_default_and_opens_only_for_listed_origins(
    service: Service, tmp_path: Path
) -> None:
    """ASVS 14.5.3."""
    asked = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    r = service.client.options("/api/v1/patients", headers=asked)
    assert "access-control-allow-origin" not in r.headers
    cfg = make_settings(
        service.backend.url, tmp_path, cors_allow_origins="https://portal.example.org"
    )
    client = TestClient(create_app(cfg, engine=service.backend.engine))
    ok = {**asked, "Origin": "https://portal.example.org"}
    r = client.options("/api/v1/patients", headers=ok)
    assert r.headers["access-control-allow-origin"] == "https://portal.example.org"
    r = client.options("/api/v1/patients", headers=asked)
    assert "access-control-allow-origin" not in r.headers


# --------------------------------------------------------------------------- §5 input
def test_nul_bytes_anywhere_are_422_never_500(service: Service) -> None:
    """ASVS 5.1.3/5.1.4: the control-character rule at the edge, on both backends."""
    p = service.patient()
    cases = [
        service.client.post("/api/v1/auth/login", json={"username": "a\x00b", "password": "x"}),
        service.get("/api/v1/audit?actor=a%00b", "admin"),
        service.get("/api/v1/patients?mrn=MRN%00X"),
        service.put(
            f"/api/v1/patients/{p['id']}",
            json={"version": 1, "reason": "typo\x00", "data": p["data"]},
        ),
        service.post("/api/v1/patients", json={"mrn": "A\x07B", "sex": "male"}),
        service.get("/api/v1/auth/me", headers={"X-Note": "a\x01b"}),
    ]
    for r in cases:
        assert r.status_code == 422, (r.request.url, r.text)
        assert r.json()["errors"], r.text
    # free text keeps its newlines and tabs
    ok = service.put(
        f"/api/v1/patients/{p['id']}",
        json={"version": 1, "reason": "line one\n\tline two", "data": p["data"]},
    )
    assert ok.status_code == 200, ok.text


def test_database_errors_never_carry_parameters(service: Service) -> None:
    """ASVS 7.1.1/8.3.5: hide_parameters keeps MRNs out of exception text and logs."""
    mrn = f"SECRET-{uuid.uuid4().hex[:8]}"
    with pytest.raises(sa.exc.DBAPIError) as exc, service.backend.engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM no_such_table WHERE x = :mrn"), {"mrn": mrn})
    assert mrn not in str(exc.value)


# --------------------------------------------------------------------------- §6 audit
def test_refused_and_failed_patient_requests_are_audited(service: Service) -> None:
    """ASVS 7.1.3/7.2.x: 401, 404, 413 and 422 on patient routes all leave an event."""
    p = service.patient()
    mark = service.watermark()
    responses = [
        service.request("GET", f"/api/v1/patients/{p['id']}"),  # 401
        service.get(f"/api/v1/patients/{uuid.uuid4()}"),  # 404
        service.post(f"/api/v1/patients/{p['id']}/episodes", json={"regions": ["knee"]}),  # 422
        service.post(
            f"/api/v1/patients/{p['id']}/documents",
            content=b"x" * (service.settings.max_request_bytes + 10),
            headers={"Content-Type": "application/json"},
        ),  # 413
    ]
    assert [r.status_code for r in responses] == [401, 404, 422, 413]
    events = {e.request_id: e for e in service.events_after(mark)}
    outcomes = [events[r.headers["x-request-id"]].outcome for r in responses]
    assert outcomes == ["denied", "not_found", "invalid", "invalid"]
    assert str(events[responses[0].headers["x-request-id"]].patient_id) == p["id"]


def test_list_events_name_the_patients_returned(service: Service) -> None:
    """ASVS 7.1.3: a search leaves the ids of the patients it showed."""
    p = service.patient()
    mark = service.watermark()
    r = service.get(f"/api/v1/patients?mrn={p['data']['mrn']}")
    assert r.status_code == 200 and r.json()["total"] == 1
    (event,) = service.events_after(mark)
    assert [str(x) for x in event.patient_ids] == [p["id"]]
    mark = service.watermark()
    listed = service.get("/api/v1/patients?limit=5").json()["items"]
    (event,) = service.events_after(mark)
    assert [str(x) for x in event.patient_ids] == [i["id"] for i in listed]


def test_audit_chain_verifies_and_detects_tampering(service: Service) -> None:
    """ASVS 7.3.3/7.3.4: the trail is hash-chained; changing one row is detected."""
    service.patient()
    with service.backend.engine.connect() as conn:
        assert audit_chain.verify(conn).ok
    last = service.watermark()
    with service.backend.engine.connect() as conn, conn.begin() as tx:
        _without_append_only_guard(conn, service.backend)
        conn.execute(
            sa.text("UPDATE audit_events SET outcome = 'success', actor = 'x' WHERE id = :i"),
            {"i": last - 1},
        )
        report = audit_chain.verify(conn)
        tx.rollback()  # the shared database stays intact for the other tests
    assert not report.ok and report.first_bad_id == last - 1
    with service.backend.engine.connect() as conn:
        assert audit_chain.verify(conn).ok


def _without_append_only_guard(conn: sa.Connection, backend: Backend) -> None:
    """What an attacker with the owner's rights would do first (inside a transaction)."""
    if backend.name == "postgresql":
        conn.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
    else:
        for event in ("update", "delete"):
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS audit_events_no_{event}")


def test_postgres_service_role_cannot_rewrite_the_audit_trail(backend: Backend) -> None:
    """ASVS 7.3.3 / 1.4.x: on PostgreSQL the service role may INSERT and SELECT only."""
    if backend.name != "postgresql":
        pytest.skip("role separation is a PostgreSQL feature; SQLite relies on file mode")
    engine = sa.create_engine(backend.url, hide_parameters=True)

    def as_service(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.cursor().execute("SET ROLE triggerpath_service")
        dbapi_conn.commit()  # a rolled-back transaction would undo the SET ROLE

    sa.event.listen(engine, "connect", as_service)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM audit_events").scalar() is not None
            for sql in (
                "TRUNCATE audit_events",
                "DELETE FROM audit_events",
                "UPDATE audit_events SET actor = 'x'",
                "ALTER TABLE audit_events DISABLE TRIGGER USER",
            ):
                with pytest.raises(sa.exc.ProgrammingError, match=r"permission|owner"):
                    conn.exec_driver_sql(sql)
                conn.rollback()
        app = create_app(make_settings(backend.url, Path("/tmp")), engine=engine)
        svc = TestClient(app)
        assert svc.get("/readyz").status_code == 200
        assert database.pg_role_problem(engine) is None
        assert database.pg_role_problem(backend.engine) is not None  # postgres: superuser
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- §8 production
def _production(url: str, data_dir: Path, **extra: Any) -> Settings:
    return Settings(
        env="production",
        data_dir=data_dir,
        database_url=url,
        secret_key=STRONG,
        jwt_signing_key=STRONG[::-1],
        cds_fhir_server_allowlist="https://ehr.example.org/fhir/",
        **extra,
    )


def test_production_refuses_demo_accounts_and_open_sqlite_files(tmp_path: Path) -> None:
    """ASVS 14.1.x/2.3.x: development accounts and world-readable data stop a start."""
    path = tmp_path / "prod.db"
    url = f"sqlite:///{path}"
    engine = database.make_engine(url)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # created private
    database.upgrade(engine)
    with database_uow(engine) as uow:
        created = users.ensure_dev_admin(uow, datetime.now(UTC))
        uow.commit()
    assert created is not None
    with pytest.raises(InvalidInput, match="development accounts"):
        create_app(_production(url, tmp_path), engine=engine)
    path.chmod(0o644)
    with pytest.raises(InvalidInput) as exc:
        create_app(_production(url, tmp_path), engine=engine)
    assert "readable by other users" in str(exc.value.problems)
    path.chmod(0o600)
    with database_uow(engine) as uow:
        admin = uow.users.by_username("admin")
        assert admin is not None
        uow.users.update(admin.id, active=False)
        uow.commit()
    app = create_app(_production(url, tmp_path), engine=engine)
    assert TestClient(app).get("/docs").status_code == 404  # not public in production
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    engine.dispose()


def test_demo_accounts_cannot_sign_in_outside_development(service: Service) -> None:
    """Accounts made by development tooling are refused in every other environment."""
    name = f"demo-{uuid.uuid4().hex[:8]}"
    with service.backend.uow() as uow:
        users.create_user(
            uow,
            username=name,
            role="clinician",
            password=PASSWORD,
            now=datetime.now(UTC),
            created_by=None,
            dev_only=True,
        )
        uow.commit()
    state = service.app.state.tp
    old, state.guard = state.guard, auth.LoginGuard(refuse_dev_only=True)
    try:
        assert _login(service, name, PASSWORD).status_code == 401
    finally:
        state.guard = old


def test_public_docs_only_when_asked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'docs.db'}"
    engine = database.make_engine(url)
    database.upgrade(engine)
    app = create_app(_production(url, tmp_path, public_docs=True), engine=engine)
    assert TestClient(app).get("/docs").status_code == 200
    engine.dispose()


@pytest.mark.parametrize(
    "secret", ["abcd" * 8, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "0123456789" * 4]
)
def test_long_but_low_entropy_secrets_stop_production(secret: str) -> None:
    """ASVS 2.10.4/6.2.x: a secret must be random, not merely long."""
    with pytest.raises(InvalidInput, match="entropy"):
        Settings(
            env="production",
            secret_key=secret,
            jwt_signing_key=STRONG,
            cds_fhir_server_allowlist="https://ehr.example.org/fhir/",
        )


def test_cds_allowlist_is_required_in_production() -> None:
    """Issue 14 §9: no EHR access token to a host outside the allowlist."""
    base: dict[str, Any] = {
        "env": "production",
        "secret_key": STRONG,
        "jwt_signing_key": STRONG[::-1],
    }
    with pytest.raises(InvalidInput, match="CDS_FHIR_SERVER_ALLOWLIST"):
        Settings(**base)
    with pytest.raises(InvalidInput, match="https URL prefix"):
        Settings(**base, cds_fhir_server_allowlist="http://ehr.example.org")
    ok = Settings(**base, cds_fhir_server_allowlist="https://ehr.example.org/fhir/")
    assert ok.fhir_server_allowlist == ("https://ehr.example.org/fhir/",)


def test_make_service_helper_still_builds(backend: Backend, tmp_path: Path) -> None:
    """A second app on the same database: tokens from the first keep working there."""
    svc = make_service(backend, tmp_path)
    assert svc.get("/api/v1/auth/me").status_code == 200
    logging.getLogger("triggerpath.test").info("second app %s", secrets.token_hex(2))
