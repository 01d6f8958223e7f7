"""The service suite runs twice: on SQLite and on a real PostgreSQL.

PostgreSQL: ``TRIGGERPATH_TEST_POSTGRES_URL`` if set, else
``postgresql+psycopg://postgres@127.0.0.1:5432/test`` (``scripts/test`` makes sure one
answers). Each test session creates a throwaway database ``tp_test_<random>`` and drops
it at the end. If PostgreSQL cannot be reached the run FAILS: these tests never skip.

Tests share one migrated database per backend and stay independent by creating their
own patients (random MRNs) and by reading only the audit events after a watermark.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg import sql

from triggerpath.adapters import database
from triggerpath.adapters.unit_of_work import SqlUnitOfWork as UnitOfWork
from triggerpath.config import Settings
from triggerpath.entrypoints.api import create_app
from triggerpath.services import users
from triggerpath.services.model import ROLES, AuditEvent, AuditQuery, NextVersion, Window

from ..conftest import AS_OF, example

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
#: Every MRN and family name the service tests sent; none may reach a log (issue 14 §5).
USED_MRNS: set[str] = set()
LOG_FILE = Path(__file__).resolve().parents[2] / "test-artifacts" / "logs" / "service-run.log"
#: Client-side loggers (the test's HTTP client logs the URLs it requests, query included).
CLIENT_LOGGERS = ("httpx", "httpcore")
BACKENDS = ("sqlite", "postgresql")
PASSWORD = "correct horse battery staple"


def pg_base_url() -> sa.URL:
    return sa.make_url(os.environ.get("TRIGGERPATH_TEST_POSTGRES_URL") or DEFAULT_PG)


def _libpq(url: sa.URL, database_name: str | None = None) -> str:
    """A libpq conninfo string for psycopg from a SQLAlchemy URL."""
    u = url.set(drivername="postgresql")
    if database_name is not None:
        u = u.set(database=database_name)
    return u.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    base = pg_base_url()
    try:
        admin = psycopg.connect(_libpq(base), autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {base.render_as_string(hide_password=True)} "
            f"({type(exc).__name__}: {exc}). The service tests must run against a real "
            "PostgreSQL: run scripts/test (it starts one) or set TRIGGERPATH_TEST_POSTGRES_URL.",
            pytrace=False,
        )
    name = f"tp_test_{secrets.token_hex(6)}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield base.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(_libpq(base), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@dataclass
class Backend:
    name: str
    url: str
    engine: sa.Engine

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'triggerpath.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    engine = database.make_engine(url)
    database.upgrade(engine)
    yield Backend(request.param, url, engine)
    engine.dispose()


def make_settings(url: str, data_dir: Path, **extra: Any) -> Settings:
    return Settings(
        env="test",
        data_dir=data_dir,
        database_url=url,
        secret_key=secrets.token_urlsafe(40),
        jwt_signing_key=secrets.token_urlsafe(40),
        **extra,
    )


@dataclass
class Service:
    """One app on one backend, with an API key per role."""

    backend: Backend
    settings: Settings
    app: FastAPI
    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)
    usernames: dict[str, str] = field(default_factory=dict)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def request(self, method: str, path: str, role: str | None = None, **kw: Any) -> Any:
        headers = dict(kw.pop("headers", {}))
        if role is not None:
            headers.update(self.auth(role))
        return self.client.request(method, path, headers=headers, **kw)

    def get(self, path: str, role: str = "clinician", **kw: Any) -> Any:
        return self.request("GET", path, role, **kw)

    def post(self, path: str, role: str = "clinician", **kw: Any) -> Any:
        return self.request("POST", path, role, **kw)

    def put(self, path: str, role: str = "clinician", **kw: Any) -> Any:
        return self.request("PUT", path, role, **kw)

    def watermark(self) -> int:
        with self.backend.uow() as uow:
            return uow.audit.last_id()

    def events_after(self, mark: int) -> list[AuditEvent]:
        with self.backend.uow() as uow:
            events, _ = uow.audit.page(AuditQuery(after_id=mark), Window(limit=1000))
        return events

    # ---- data builders (as a clinician, through the API) ----------------------------
    def ok(self, response: Any, status: int = 201) -> dict[str, Any]:
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        return body

    def patient(self, **data: Any) -> dict[str, Any]:
        """A patient with two identifiers (synthetic names, date of birth) and an MRN."""
        body = {
            "mrn": f"MRN-{uuid.uuid4().hex[:12]}",
            "family_name": synthetic_name(),
            "given_name": "Testa Maria",
            "birth_date": "1974-05-17",
            "sex": "male",
        }
        if "birth_year" in data:  # a test about the year: the same year's date of birth
            body["birth_date"] = f"{data['birth_year']}-05-17"
        sent = {**body, **data}
        USED_MRNS.update(str(sent[k]) for k in ("mrn", "family_name") if sent.get(k))
        return self.ok(self.post("/api/v1/patients", json=sent))

    def episode(self, patient_id: str, **data: Any) -> dict[str, Any]:
        body = {"regions": ["low_back"], "onset": "2026-07-01"}
        return self.ok(self.post(f"/api/v1/patients/{patient_id}/episodes", json={**body, **data}))

    def assessment(self, episode_id: str, name: str = "ql_chronic_low_back") -> dict[str, Any]:
        body = {"input": example(name), "as_of": AS_OF.isoformat()}
        return self.ok(self.post(f"/api/v1/episodes/{episode_id}/assessments", json=body))

    def store_as_an_older_build_wrote_it(self, record_id: str, data: dict[str, Any]) -> None:
        """Append version 2 of a record with ``data`` straight to the store, as an earlier
        schema wrote it (no API, no kernel): history that today's models may refuse."""
        with self.backend.uow() as uow:
            rec = uow.records.get(uuid.UUID(record_id))
            assert rec is not None
            new = replace(
                rec.current,
                version=2,
                data=data,
                reason="schema test",
                recorded_at=rec.current.recorded_at,
            )
            assert uow.records.append(NextVersion(rec.id, 1, new))
            uow.commit()

    def plan(self, assessment_id: str, **data: Any) -> dict[str, Any]:
        """A ready plan: the planner's file shape without the assessment (issue 11 §1)."""
        body = {**plan_body(), **data}
        return self.ok(self.post(f"/api/v1/assessments/{assessment_id}/plans", json=body))

    def session(self, episode_id: str, role: str = "clinician", **data: Any) -> dict[str, Any]:
        body = {
            "performed_at": "2026-11-21T10:00:00+00:00",
            "sites": [
                {
                    "muscle": "quadratus_lumborum",
                    "side": "right",
                    "agent": "lidocaine",
                    "concentration_percent": 1.0,
                    "volume_ml": 3,
                }
            ],
            "complications": ["none"],
        }
        return self.ok(
            self.post(f"/api/v1/episodes/{episode_id}/sessions", role, json={**body, **data})
        )

    def outcome(self, episode_id: str, role: str = "clinician") -> dict[str, Any]:
        body = {"measured_on": "2026-11-28", "instrument": "nrs", "value": 3}
        return self.ok(self.post(f"/api/v1/episodes/{episode_id}/outcomes", role, json=body))

    def document(self, patient_id: str) -> dict[str, Any]:
        body = {
            "kind": "assessment_report",
            "title": "Assessment report",
            "media_type": "text/plain",
            "content_base64": "UmVwb3J0IGJvZHk=",
        }
        return self.ok(self.post(f"/api/v1/patients/{patient_id}/documents", json=body))


def synthetic_name() -> str:
    """A random family name of letters only (identity rule), unique enough to grep logs for."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    return "Zz" + "".join(secrets.choice(letters) for _ in range(10))


def plan_body(name: str = "ql_low_back_ok") -> dict[str, Any]:
    """An examples/plans file without its assessment: what POST .../plans takes."""
    path = Path(__file__).resolve().parents[2] / "examples" / "plans" / f"{name}.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    data.pop("assessment")
    return data


def make_service(backend: Backend, data_dir: Path, **settings: Any) -> Service:
    cfg = make_settings(backend.url, data_dir, **settings)
    app = create_app(cfg, engine=backend.engine)
    client = TestClient(app, raise_server_exceptions=False)
    svc = Service(backend=backend, settings=cfg, app=app, client=client)
    now = datetime.now(UTC)
    with backend.uow() as uow:
        for role in ROLES:
            name = f"{role}-{secrets.token_hex(3)}"
            user = users.create_user(
                uow, username=name, role=role, password=PASSWORD, now=now, created_by=None
            )
            _, token = users.create_api_key(
                uow, cfg.secret("secret_key"), user.id, name="tests", now=now
            )
            svc.tokens[role] = token
            svc.usernames[role] = name
        uow.commit()
    return svc


@pytest.fixture(scope="session")
def service(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = make_service(backend, tmp_path_factory.mktemp("data"))
    with svc.client:  # one event-loop portal for the whole session, not one per request
        yield svc


class _ServiceLogs(logging.Handler):
    """Everything the service (not the test's HTTP client) logs during the run."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(CLIENT_LOGGERS):
            self.lines.append(self.format(record))


@pytest.fixture(scope="session", autouse=True)
def logs_hold_no_patient_identifiers() -> Iterator[None]:
    """Grep the service's logs of the whole run for every MRN the tests used (ASVS 7.1.1).

    The captured log goes to ``test-artifacts/logs/service-run.log``; a hit fails the run
    (reported as an error in the last test's teardown).
    """
    handler = _ServiceLogs()
    root = logging.getLogger()
    root.addHandler(handler)
    ours = logging.getLogger("triggerpath")
    before = ours.level
    ours.setLevel(logging.INFO)  # the access log and everything else the service says
    try:
        yield
    finally:
        root.removeHandler(handler)
        ours.setLevel(before)
    LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
    LOG_FILE.write_text("\n".join(handler.lines) + "\n", encoding="utf-8")
    text = "\n".join(handler.lines)
    leaked = sorted(m for m in USED_MRNS if m and m in text)
    assert not leaked, f"patient identifiers in the service log ({LOG_FILE}): {leaked[:5]}"
