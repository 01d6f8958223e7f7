"""Liveness and readiness probes (no authentication, no patient data)."""

from fastapi import APIRouter
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
def readyz(state: State) -> JSONResponse:
    """Ready to serve: the database answers and its migrations are at head."""
    r = readiness(state.engine)
    body = s.Readiness(
        status="ready" if r.ready else "not_ready",
        database=r.database,
        migration=r.revision,
        head=r.head,
        detail=r.detail,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if r.ready else 503)
