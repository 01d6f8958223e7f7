"""Liveness and readiness probes (no authentication, no patient data)."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from triggerpath.adapters.database import readiness
from triggerpath.entrypoints.api import schemas as s
from triggerpath.entrypoints.api.deps import State

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=s.Health)
def healthz() -> s.Health:
    """The process is alive."""
    return s.Health()


@router.get(
    "/readyz",
    response_model=s.Readiness,
    responses={503: {"model": s.Readiness, "description": "not ready"}},
)
def readyz(state: State, request: Request) -> JSONResponse:
    """Ready to serve: the database answers, its migrations are at head, and the CDS
    service has warmed up (knowledge loaded, first evaluation of each hook done)."""
    r = readiness(state.engine)
    cds_ready = getattr(request.app.state, "cds_ready", None)
    warm = cds_ready() if callable(cds_ready) else True
    ready = r.ready and bool(warm)
    body = s.Readiness(
        status="ready" if ready else "not_ready",
        database=r.database,
        migration=r.revision,
        head=r.head,
        detail=r.detail if warm else f"{r.detail}; CDS warm-up not done",
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ready else 503)
