"""Service commands: ``serve``, ``db upgrade|backup|restore|status``, ``users``, ``audit``.

Registered on the main ``triggerpath`` app by one import line in ``cli.py``. Settings
come from ``TRIGGERPATH_*`` variables (see :mod:`triggerpath.config`); a problem with
them exits 2 naming the variable.
"""

from __future__ import annotations

import getpass
import ipaddress
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from triggerpath.adapters import database
from triggerpath.adapters.unit_of_work import SqlUnitOfWork as UnitOfWork
from triggerpath.config import Settings, load_settings
from triggerpath.entrypoints.cli.app import Format, FormatOpt, app, emit_json, err, out, user_errors
from triggerpath.errors import InvalidInput
from triggerpath.services import users as user_service
from triggerpath.services.model import ROLES, Actor, AuditEvent, AuditQuery, Outcome, Window

db_app = typer.Typer(help="Database: migrations, backup and restore.", no_args_is_help=True)
users_app = typer.Typer(help="Users, roles and API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")


def _now() -> datetime:
    return datetime.now(UTC)  # the clock is read here, at the edge


def _operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


@contextmanager
def _database(settings: Settings, *, at_head: bool = True) -> Iterator[Any]:
    """The engine for one command, disposed after it. ``at_head``: the schema must be at the
    newest migration (in development it is brought there)."""
    engine = database.make_engine(settings.db_url)
    try:
        if at_head and settings.development:
            database.upgrade(engine)
        elif at_head:
            state = database.readiness(engine)
            if not state.ready:
                raise InvalidInput.single(
                    "TRIGGERPATH_DATABASE_URL", f"{state.detail}; run 'triggerpath db upgrade'"
                )
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _unit_of_work(settings: Settings) -> Iterator[UnitOfWork]:
    """One unit of work on the database at head (see :func:`_database`)."""
    with _database(settings) as engine, UnitOfWork(engine) as uow:
        yield uow


def _operator_event(
    action: str, target: Any = None, outcome: Outcome = "success", at: datetime | None = None
) -> AuditEvent:
    """The audit event of an operator action on the command line (who: the OS user)."""
    return AuditEvent(at or _now(), "cli", _operator(), None, action, outcome, record_id=target)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------- serve
#: Seconds in-flight requests get to finish after SIGTERM before workers are stopped.
GRACEFUL_SHUTDOWN_SECONDS = 30
#: A worker that does not answer the supervisor's ping this long is replaced. uvicorn's 5 s
#: default kills workers still loading the knowledge and warming up on a busy host.
WORKER_HEALTHCHECK_SECONDS = 60


def _prepare_database(settings: Settings) -> None:
    """Development: migrate and create the demo admin; elsewhere: warn when not ready."""
    engine = database.make_engine(settings.db_url)
    try:
        if settings.development:
            database.upgrade(engine)
            with UnitOfWork(engine) as uow:
                created = user_service.ensure_dev_admin(uow, _now())
                uow.commit()
            if created:
                name, password = created
                sys.stderr.write(
                    f"Development admin created (shown once): username {name}  "
                    f"password {password}\n"
                )
            err.print(f"development mode: data in {settings.data_dir}", highlight=False)
        else:
            state = database.readiness(engine)
            if not state.ready:
                err.print(f"[yellow]not ready:[/] {state.detail}; /readyz answers 503", markup=True)
    finally:
        engine.dispose()  # each worker opens its own pool


def _check_serving(settings: Settings, workers: int) -> None:
    """Development listens on loopback only and runs one auto-reloading process."""
    if settings.development and not _is_loopback(settings.host):
        raise InvalidInput.single(
            "--host",
            f"development mode only listens on loopback, not {settings.host}; set "
            "TRIGGERPATH_ENV=production and real secrets to serve on the network",
        )
    if settings.development and workers != 1:
        raise InvalidInput.single(
            "--workers",
            "development runs one auto-reloading process; set TRIGGERPATH_ENV=production "
            "(and real secrets) for worker processes",
        )


@app.command()
@user_errors
def serve(
    host: Annotated[
        str | None, typer.Option(help="address to bind (default TRIGGERPATH_HOST, 127.0.0.1)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="port (default TRIGGERPATH_PORT, 8000)", min=1, max=65535)
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="worker processes (production; one per CPU core is the usual choice)",
            min=1,
            max=64,
        ),
    ] = 1,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            help="comma-separated proxy IPs (or '*') whose X-Forwarded-For/-Proto are trusted",
        ),
    ] = "127.0.0.1",
) -> None:
    """Run the REST API, web app and CDS Hooks (docs at /docs, probes at /healthz, /readyz).

    Production (``TRIGGERPATH_ENV=production``): ``--workers N`` processes under uvicorn's
    supervisor (a crashed worker is replaced), proxy headers from ``--forwarded-allow-ips``,
    and on SIGTERM in-flight requests finish (up to 30 s) and queued card writes are
    flushed. Development: one process that reloads when the code changes.
    """
    import uvicorn

    from triggerpath.entrypoints.api.serving import APP_FACTORY

    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = load_settings(**overrides)
    _check_serving(settings, workers)
    _prepare_database(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    package = Path(__file__).resolve().parents[2]
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=None if settings.development else workers,
        reload=settings.development,
        reload_dirs=[str(package)] if settings.development else None,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        backlog=2048,
        access_log=False,  # ours logs route templates, never paths or query strings
        server_header=False,
        log_level="info",
    )


def _cli_event(
    settings: Settings, action: str, target: Any = None, outcome: Outcome = "success"
) -> None:
    """Audit an operator action taken on the command line (who: the OS user)."""
    with _database(settings, at_head=False) as engine, UnitOfWork(engine) as uow:
        uow.audit.add(_operator_event(action, target, outcome))
        uow.commit()


# --------------------------------------------------------------------------- db
@db_app.command("upgrade")
@user_errors
def db_upgrade() -> None:
    """Apply the migrations up to the newest (safe to run again)."""
    with _database(load_settings(), at_head=False) as engine:
        before = database.current_revision(engine)
        after = database.upgrade(engine)
    out.print(f"database at {after}" + (" (unchanged)" if before == after else f" (was {before})"))


@db_app.command("status")
@user_errors
def db_status() -> None:
    """Is the database reachable and at the newest migration? Exit 1 when not."""
    with _database(load_settings(), at_head=False) as engine:
        state = database.readiness(engine)
    out.print(f"{'ready' if state.ready else 'not ready'}: {state.detail}")
    if not state.ready:
        raise typer.Exit(1)


def _sqlite_only(settings: Settings, verb: str) -> None:
    if not database.is_sqlite(settings.db_url):
        raise InvalidInput.single(
            "TRIGGERPATH_DATABASE_URL",
            f"db {verb} handles SQLite; for PostgreSQL use pg_dump / pg_restore (see README)",
        )


@db_app.command("backup")
@user_errors
def db_backup(
    file: Annotated[Path, typer.Argument(help="new file to write the backup to")],
) -> None:
    """Copy the SQLite database to FILE, consistently, while the service runs."""
    settings = load_settings()
    _sqlite_only(settings, "backup")
    database.backup_sqlite(settings.db_url, file)
    _cli_event(settings, "db.backup")
    out.print(f"backup written to {file} (schema {database.check_backup(file)})")


@db_app.command("restore")
@user_errors
def db_restore(
    file: Annotated[Path, typer.Argument(help="a backup made by 'triggerpath db backup'")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Replace the SQLite database with FILE (stop the service first), then migrate."""
    settings = load_settings()
    _sqlite_only(settings, "restore")
    database.check_backup(file)
    if not yes and not typer.confirm(
        f"Replace everything in {database.sqlite_file(settings.db_url)} with {file}?"
    ):
        raise typer.Exit(1)
    revision = database.restore_sqlite(settings.db_url, file)
    with _database(settings, at_head=False) as engine:
        head = database.upgrade(engine)
    _cli_event(settings, "db.restore")  # into the restored trail, so it shows the restore
    out.print(f"restored {file} (schema {revision}, now {head})")


# --------------------------------------------------------------------------- users
@users_app.command("create")
@user_errors
def users_create(
    username: Annotated[str, typer.Argument(help="lower-case login name")],
    role: Annotated[str, typer.Option("--role", help=f"one of: {', '.join(ROLES)}")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from stdin")
    ] = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="a system account (API keys only)")
    ] = False,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", metavar="NAME", help="also issue an API key (shown once)"),
    ] = None,
) -> None:
    """Create a user (Argon2 password hash) and optionally an API key for it."""
    settings = load_settings()
    user_service.check_username(username)
    user_service.check_role(role)
    password: str | None = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif not no_password:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    now = _now()
    with _unit_of_work(settings) as uow:
        user = user_service.create_user(
            uow, username=username, role=role, password=password, now=now, created_by=None
        )
        token = None
        if api_key:
            _, token = user_service.create_api_key(
                uow, settings.secret("secret_key"), user.id, name=api_key, now=now
            )
        uow.audit.add(_operator_event("user.create", user.id, at=now))
        uow.commit()
    out.print(f"created {user.role} {user.username}")
    if token:
        out.print(f"API key (shown once): {token}", markup=False, highlight=False)


@users_app.command("list")
@user_errors
def users_list(format: FormatOpt = Format.text) -> None:
    """List users and roles."""
    with _unit_of_work(load_settings()) as uow:
        found, _ = user_service.list_users(uow, Window(limit=10_000))
    rows = [
        {"username": u.username, "role": u.role, "active": u.active, "id": str(u.id)} for u in found
    ]
    if format is Format.json:
        emit_json(rows)
        return
    for r in rows:
        out.print(f"{r['username']:<24} {r['role']:<10} {'active' if r['active'] else 'inactive'}")


def _cli_actor(uow: UnitOfWork, username: str) -> tuple[Actor, Any]:
    """The CLI operator acts as an admin on ``username`` (who must exist)."""
    user = uow.users.by_username(username)
    if user is None:
        raise InvalidInput.single("USERNAME", f"no user {username!r}")
    return Actor(username=_operator(), role="admin"), user


@users_app.command("reset-password")
@user_errors
def users_reset_password(
    username: Annotated[str, typer.Argument(help="the user who must choose a new password")],
) -> None:
    """Clear USERNAME's password and print a one-time reset token (shown once).

    The user chooses a new password with it (POST /api/v1/auth/password-reset); until
    then the account cannot act, and every session and token it held has ended.
    """
    settings = load_settings()
    with _unit_of_work(settings) as uow:
        actor, user = _cli_actor(uow, username)
        _, token, expires = user_service.reset_password(
            uow, settings.secret("secret_key"), actor, user.id, _now()
        )
        uow.commit()
    _cli_event(settings, "user.reset_password", user.id)
    out.print(f"reset token for {username} (shown once, expires {expires:%Y-%m-%d %H:%M} UTC):")
    typer.echo(token)


@users_app.command("deactivate")
@user_errors
def users_deactivate(
    username: Annotated[str, typer.Argument(help="the user to deactivate")],
) -> None:
    """Deactivate USERNAME: every session and token ends; API keys stop working."""
    settings = load_settings()
    with _unit_of_work(settings) as uow:
        actor, user = _cli_actor(uow, username)
        user_service.update_user(uow, user.id, actor=actor, active=False)
        uow.commit()
    _cli_event(settings, "user.update", user.id)
    out.print(f"deactivated {username}")


# --------------------------------------------------------------------------- audit
def _when(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput.single(field, f"{value!r} is not a date or ISO timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


audit_app = typer.Typer(
    help="The audit trail: list it, or verify its hash chain (triggerpath audit verify).",
    invoke_without_command=True,
)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
@user_errors
def audit_verify(format: FormatOpt = Format.text) -> None:
    """Recompute the audit trail's hash chain; exit 1 naming the first event at fault."""
    from triggerpath.adapters import audit_chain

    with _database(load_settings()) as engine, engine.connect() as conn:
        report = audit_chain.verify(conn)
    if format is Format.json:
        emit_json(
            {
                "ok": report.ok,
                "checked": report.checked,
                "unchained": report.unchained,
                "first_bad_id": report.first_bad_id,
                "reason": report.reason,
            }
        )
    elif report.ok:
        out.print(
            f"audit chain intact: {report.checked} event(s) verified"
            + (f", {report.unchained} from before the chain" if report.unchained else "")
        )
    else:
        err.print(f"audit chain BROKEN at event {report.first_bad_id}: {report.reason}")
    if not report.ok:
        raise typer.Exit(1)


@audit_app.callback()
@user_errors
def audit(
    ctx: typer.Context,
    patient: Annotated[str | None, typer.Option(help="patient id")] = None,
    actor: Annotated[str | None, typer.Option(help="username")] = None,
    action: Annotated[
        str | None, typer.Option(help="action, e.g. patient.read, or a prefix: patient.*")
    ] = None,
    outcome: Annotated[
        str | None, typer.Option(help="success, denied, not_found, conflict, invalid, error")
    ] = None,
    request_id: Annotated[str | None, typer.Option("--request-id")] = None,
    since: Annotated[str | None, typer.Option(help="from (YYYY-MM-DD or ISO time, UTC)")] = None,
    until: Annotated[str | None, typer.Option(help="before (YYYY-MM-DD or ISO time)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 200,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    format: FormatOpt = Format.text,
) -> None:
    """List the audit trail (oldest first), filtered; ``audit verify`` checks its chain."""
    from uuid import UUID

    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings()
    patient_id = None
    if patient is not None:
        try:
            patient_id = UUID(patient)
        except ValueError:
            raise InvalidInput.single("--patient", "not a patient id (UUID)") from None
    query = AuditQuery(
        patient_id=patient_id,
        actor=actor,
        action=action,
        outcome=outcome,
        request_id=request_id,
        since=_when(since, "--since"),
        until=_when(until, "--until"),
    )
    with _unit_of_work(settings) as uow:
        events, total = uow.audit.page(query, Window(limit=limit, offset=offset))
    rows = [
        {
            "id": e.id,
            "at": e.at.isoformat(),
            "request_id": e.request_id,
            "actor": e.actor,
            "role": e.role,
            "action": e.action,
            "patient_id": str(e.patient_id) if e.patient_id else None,
            "record_id": str(e.record_id) if e.record_id else None,
            "outcome": e.outcome,
        }
        for e in events
    ]
    if format is Format.json:
        emit_json({"total": total, "items": rows})
        return
    for e in events:
        typer.echo(
            f"{e.id:>6} {e.at.isoformat()[:19]} {e.actor or '-':<16} {e.action:<22} "
            f"{e.outcome:<9} patient={e.patient_id or '-'} request={e.request_id}"
        )
    typer.echo(f"{len(rows)} of {total} event(s)")
