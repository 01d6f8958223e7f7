"""The FastAPI application factory.

``create_app(settings)`` builds everything a request needs once (engine, knowledge base,
unit-of-work factory) and mounts the routers. Optional routers (CDS Hooks, the web
app ...) are mounted by adding one line to :func:`default_routers`, or per app with
``create_app(settings, extra_routers=[...])``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from triggerpath import __version__
from triggerpath.adapters import database
from triggerpath.adapters.cds_feedback import SqlFeedbackStore
from triggerpath.adapters.database import make_engine
from triggerpath.bootstrap import uow_factory
from triggerpath.config import Settings
from triggerpath.entrypoints.api import (
    middleware,
    problems,
    routes_admin,
    routes_auth,
    routes_compute,
    routes_export,
    routes_health,
    routes_records,
    routes_signatures,
    routes_worklist,
)
from triggerpath.entrypoints.api.cds_hooks import cds_router
from triggerpath.entrypoints.api.deps import AppState
from triggerpath.errors import FieldProblem, InvalidInput
from triggerpath.knowledge import load_knowledge
from triggerpath.services import auth

DESCRIPTION = """\
Decision support for trigger point injections (TPIs) in back pain, as a clinic service.

Authenticate with a bearer token (an API key `tp_...`, or a JWT from `POST /api/v1/auth/token`)
or a browser session (`POST /api/v1/auth/login`; changes then need the `X-CSRF-Token` header).
Roles: **clinician** (all clinical actions, signs), **nurse** (records sessions and outcomes),
**viewer** (reads), **admin** (users, policy, audit; no patient data).

Clinical records are append-only: `PUT` writes a new version and needs the `version` you read
(409 with `current_version` when someone else changed it first); `history` shows every version.
Errors are RFC 9457 problem details naming each field. Every access to patient data is audited.
"""


def default_routers() -> list[APIRouter]:
    """The routers every app mounts; add optional ones here, one line each."""
    routers = [
        routes_health.router,
        routes_auth.router,
        routes_records.router,
        routes_signatures.router,
        routes_worklist.router,
        routes_export.router,
        routes_compute.router,
        routes_admin.router,
    ]
    from triggerpath.entrypoints.web import router as web_router  # clinician web app, /app

    routers.append(web_router)
    return routers


def create_app(
    settings: Settings,
    *,
    engine: sa.Engine | None = None,
    extra_routers: Iterable[APIRouter] = (),
) -> FastAPI:
    """The service for ``settings`` (an ``engine`` may be passed in, e.g. by tests)."""
    engine = engine or make_engine(settings.db_url)
    if settings.production:
        refuse_unsafe_start(settings, engine)
    docs = settings.docs_public
    app = FastAPI(
        title="TriggerPath",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json" if docs else None,
        docs_url="/docs" if docs else None,
        redoc_url=None,
    )
    app.state.tp = AppState(
        settings=settings,
        engine=engine,
        kb=load_knowledge(),
        uow_factory=uow_factory(engine),
        guard=auth.LoginGuard(
            gate=auth.HashGate(settings.max_concurrent_hashes),
            refuse_dev_only=not settings.development,
        ),
    )
    problems.install(app)
    # innermost first: the last one added sees the request first
    app.add_middleware(middleware.ControlCharacters, own_check_prefixes=("/cds-services",))
    app.add_middleware(
        middleware.BodyLimit,
        max_bytes=settings.max_request_bytes,
        prefix_limits={"/cds-services": settings.cds_max_request_bytes},
    )
    app.add_middleware(middleware.PatientAudit, uow_factory=lambda: app.state.tp.uow_factory)
    if settings.cors_origins:  # closed unless origins are listed explicitly
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-CSRF-Token", "X-Request-ID"],
            allow_credentials=False,
        )
    app.add_middleware(middleware.SecurityHeaders, docs_paths=frozenset({"/docs"}))
    app.add_middleware(middleware.RequestContext)
    # CDS Hooks 2.0 (/cds-services) first, so the EHR's calls are matched before the other
    # routes; cards, feedback, answers and jti are kept in the clinic database.
    app.include_router(cds_router(settings, SqlFeedbackStore(engine), knowledge=app.state.tp.kb))
    for router in [*default_routers(), *extra_routers]:
        app.include_router(router)
    _document_text_rule(app)
    return app


#: Strings hold no control characters; free text may hold tab and newline (domain/text.py).
PLAIN_TEXT = r"^[^\u0000-\u001f\u007f-\u009f]*$"
FREE_TEXT = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"


def _constrain_strings(node: Any, key: str = "") -> None:
    """Add the control-character rule as a ``pattern`` to every unconstrained string."""
    if isinstance(node, dict):
        if node.get("type") == "string" and not (
            {"pattern", "format", "enum", "const"} & node.keys()
        ):
            free = key in middleware.FREE_TEXT_FIELDS
            node["pattern"] = FREE_TEXT if free else PLAIN_TEXT
        for child_key, child in node.items():
            if child_key == "properties" and isinstance(child, dict):
                for name, prop in child.items():
                    _constrain_strings(prop, name)
            else:
                _constrain_strings(child, key if child_key in ("anyOf", "oneOf", "allOf") else "")
    elif isinstance(node, list):
        for item in node:
            _constrain_strings(item, key)


def _document_text_rule(app: FastAPI) -> None:
    """The OpenAPI document says what the edge enforces: no control characters in strings."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            _constrain_strings(schema.get("components", {}))
            for path in schema.get("paths", {}).values():
                _constrain_strings(path)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def startup_problems(settings: Settings, engine: sa.Engine) -> list[FieldProblem]:
    """Why production must not start on this database (empty when it may).

    Development accounts (demo users, the generated admin) must be gone or deactivated;
    a SQLite file must be private to the service's user; on PostgreSQL the service must
    not connect as a superuser or as a role that could rewrite the audit trail.
    """
    problems: list[FieldProblem] = []
    if database.is_sqlite(settings.db_url):
        path = database.sqlite_file(settings.db_url)
        if database.readable_by_others(path):
            problems.append(
                FieldProblem(
                    "TRIGGERPATH_DATABASE_URL",
                    f"{path} is readable by other users; chmod 600 it (and its -wal/-shm)",
                )
            )
    elif (why := database.pg_role_problem(engine)) is not None:
        problems.append(FieldProblem("TRIGGERPATH_DATABASE_URL", why))
    try:
        with uow_factory(engine)() as uow:
            dev = uow.users.dev_only_users()
    except sa.exc.SQLAlchemyError:
        dev = []  # not migrated or not reachable: /readyz says so
    if dev:
        problems.append(
            FieldProblem(
                "users",
                f"development accounts are active ({', '.join(sorted(dev))}); deactivate "
                "them (PATCH /api/v1/users/{id} active=false, or triggerpath users "
                "deactivate NAME) before starting in production",
            )
        )
    return problems


def refuse_unsafe_start(settings: Settings, engine: sa.Engine) -> None:
    problems = startup_problems(settings, engine)
    if problems:
        raise InvalidInput(problems)
