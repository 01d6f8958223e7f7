"""Service commands: db upgrade/status/backup/restore, users, audit, serve's refusals.

Backup and restore are SQLite features (PostgreSQL: pg_dump / pg_restore, README).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from triggerpath.adapters import database, orm
from triggerpath.config import load_settings
from triggerpath.entrypoints.api import create_app
from triggerpath.entrypoints.cli import app

from ..conftest import AS_OF, IDENTITY, example

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("TRIGGERPATH_ENV", "TRIGGERPATH_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TRIGGERPATH_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def cli(*args: str, stdin: str | None = None) -> Any:
    return runner.invoke(app, list(args), input=stdin)


def snapshot(url: str) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table, as text, in a stable order."""
    engine = sa.create_engine(url)
    out: dict[str, list[tuple[str, ...]]] = {}
    with engine.connect() as conn:
        for table in [*orm.metadata.sorted_tables, sa.table("alembic_version", sa.column("v"))]:
            name = table.name
            rows = conn.execute(sa.text(f"SELECT * FROM {name}")).all()
            out[name] = sorted(tuple(str(v) for v in row) for row in rows)
    engine.dispose()
    return out


def _api_key(data_dir: Path, role: str = "clinician") -> str:
    name = f"{role}-cli"
    r = cli("users", "create", name, "--role", role, "--no-password", "--api-key", "t")
    assert r.exit_code == 0, r.output
    return str(r.stdout.split("API key (shown once): ")[1].split()[0])


def test_db_upgrade_and_status(data_dir: Path) -> None:
    r = cli("db", "status")
    assert r.exit_code == 1 and "not ready" in r.stdout
    r = cli("db", "upgrade")
    assert r.exit_code == 0 and database.head_revision() in r.stdout
    assert "unchanged" in cli("db", "upgrade").stdout
    r = cli("db", "status")
    assert r.exit_code == 0 and r.stdout.startswith("ready")
    assert (data_dir / "triggerpath.db").exists()


def test_users_create_list_and_refusals(data_dir: Path) -> None:
    r = cli(
        "users",
        "create",
        "dr.ng",
        "--role",
        "clinician",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    assert r.exit_code == 0, r.output
    listed = json.loads(cli("users", "list", "--format", "json").stdout)
    assert [(u["username"], u["role"]) for u in listed] == [("dr.ng", "clinician")]
    r = cli("users", "create", "x2", "--role", "surgeon", "--no-password")
    assert r.exit_code == 2 and "role" in r.output
    r = cli("users", "create", "short", "--role", "nurse", "--password-stdin", stdin="short\n")
    assert r.exit_code == 2 and "password" in r.output
    r = cli("users", "create", "dr.ng", "--role", "nurse", "--no-password")
    assert r.exit_code == 2 and "taken" in r.output


def test_audit_lists_and_filters(data_dir: Path) -> None:
    token = _api_key(data_dir)
    client = TestClient(create_app(load_settings()))
    h = {"Authorization": f"Bearer {token}"}
    pid = client.post(
        "/api/v1/patients", headers=h, json={**IDENTITY, "mrn": "A-1", "sex": "male"}
    ).json()["id"]
    client.get(f"/api/v1/patients/{pid}", headers=h)
    r = cli("audit", "--patient", pid, "--format", "json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert [e["action"] for e in got["items"]] == ["patient.create", "patient.read"]
    assert all(e["actor"] == "clinician-cli" and e["outcome"] == "success" for e in got["items"])
    text = cli("audit", "--action", "patient.*", "--actor", "clinician-cli")
    assert text.exit_code == 0 and "2 of 2 event(s)" in text.stdout
    assert cli("audit", "--since", "yesterday").exit_code == 2


def test_backup_restore_gives_identical_data(data_dir: Path, tmp_path: Path) -> None:
    token = _api_key(data_dir)
    settings = load_settings()
    client = TestClient(create_app(settings))
    h = {"Authorization": f"Bearer {token}"}
    p = client.post(
        "/api/v1/patients", headers=h, json={**IDENTITY, "mrn": "B-1", "sex": "female"}
    ).json()
    e = client.post(
        f"/api/v1/patients/{p['id']}/episodes", headers=h, json={"regions": ["neck"]}
    ).json()
    a = client.post(
        f"/api/v1/episodes/{e['id']}/assessments",
        headers=h,
        json={"input": example("upper_trapezius_tension_headache"), "as_of": AS_OF.isoformat()},
    )
    assert a.status_code == 201, a.text
    before = snapshot(settings.db_url)
    backup = tmp_path / "backups" / "tp.sqlite"
    r = cli("db", "backup", str(backup))
    assert r.exit_code == 0 and backup.exists(), r.output
    assert cli("db", "backup", str(backup)).exit_code == 2  # never overwrites

    # life goes on: a correction, a new patient, more audit events
    client.put(
        f"/api/v1/patients/{p['id']}",
        headers=h,
        json={
            "version": 1,
            "reason": "sex recorded wrongly",
            "data": {**IDENTITY, "mrn": "B-1", "sex": "male"},
        },
    )
    client.post("/api/v1/patients", headers=h, json={**IDENTITY, "mrn": "B-2", "sex": "male"})
    assert snapshot(settings.db_url) != before

    assert cli("db", "restore", str(backup), stdin="n\n").exit_code == 1  # asks first
    r = cli("db", "restore", str(backup), "--yes")
    assert r.exit_code == 0, r.output
    after = snapshot(settings.db_url)
    # identical, plus the restore's own audit event (issue 14 §6: restores are audited)
    *restored, restore_event = after.pop("audit_events")
    assert restored == before.pop("audit_events") and after == before
    assert "db.restore" in restore_event and "cli:" in str(restore_event)
    # and the restored database serves
    got = client.get(f"/api/v1/assessments/{a.json()['id']}", headers=h).json()
    assert got["data"]["result"] == a.json()["data"]["result"]


def test_restore_refuses_what_is_not_a_backup(data_dir: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all")
    r = cli("db", "restore", str(junk), "--yes")
    assert r.exit_code == 2 and "not a SQLite database" in r.output
    plain = tmp_path / "plain.db"
    with sa.create_engine(f"sqlite:///{plain}").begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x)")
    r = cli("db", "restore", str(plain), "--yes")
    assert r.exit_code == 2 and "not a TriggerPath database" in r.output
    r = cli("db", "restore", str(tmp_path / "missing.db"), "--yes")
    assert r.exit_code == 2 and "does not exist" in r.output


def test_backup_on_postgres_points_to_pg_dump(
    data_dir: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIGGERPATH_DATABASE_URL", pg_url)
    r = cli("db", "backup", "x.sqlite")
    assert r.exit_code == 2 and "pg_dump" in r.output
    assert cli("db", "upgrade").exit_code == 0
    assert cli("db", "status").exit_code == 0


def test_serve_refuses_default_secrets_outside_development(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIGGERPATH_ENV", "production")
    monkeypatch.setenv("TRIGGERPATH_SECRET_KEY", "changethis")
    monkeypatch.delenv("TRIGGERPATH_JWT_SIGNING_KEY", raising=False)
    r = cli("serve")
    assert r.exit_code == 2
    assert "TRIGGERPATH_SECRET_KEY" in r.output and "TRIGGERPATH_JWT_SIGNING_KEY" in r.output
    assert not (data_dir / "triggerpath.db").exists()  # refused before touching anything


def test_development_serve_stays_on_loopback(data_dir: Path) -> None:
    r = cli("serve", "--host", "0.0.0.0")
    assert r.exit_code == 2 and "loopback" in r.output
