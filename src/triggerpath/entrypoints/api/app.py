"""The FastAPI application factory.

``create_app(settings)`` builds everything a request needs once (engine, knowledge base,
unit-of-work factory) and mounts the routers. Optional routers (CDS Hooks, the web
app ...) are mounted by adding one line to :func:`default_routers`, or per app with
``create_app(settings, extra_routers=[...])``.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI

from triggerpath import __version__
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
    routes_health,
    routes_records,
)
from triggerpath.entrypoints.api.cds_hooks import cds_router
from triggerpath.entrypoints.api.deps import AppState
from triggerpath.knowledge import load_knowledge

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
    app = FastAPI(
        title="TriggerPath",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.tp = AppState(
        settings=settings,
        engine=engine,
        kb=load_knowledge(),
        uow_factory=uow_factory(engine),
    )
    problems.install(app)
    app.add_middleware(
        middleware.BodyLimit,
        max_bytes=settings.max_request_bytes,
        prefix_limits={"/cds-services": settings.cds_max_request_bytes},
    )
    app.add_middleware(middleware.RequestContext)
    # CDS Hooks 2.0 (/cds-services) first, so the EHR's calls are matched before the other
    # routes; cards, feedback, answers and jti are kept in the clinic database.
    app.include_router(cds_router(settings, SqlFeedbackStore(engine), knowledge=app.state.tp.kb))
    for router in [*default_routers(), *extra_routers]:
        app.include_router(router)
    return app
