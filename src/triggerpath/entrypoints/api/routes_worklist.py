"""GET /api/v1/worklist: the clinician's worklist (computed, not stored), for integrators.

The same use case as the web home page (:mod:`triggerpath.services.worklist`): filters
``scope`` (``mine``: items you have to act on; ``all``), ``within_days`` (also show
reassessments whose window opens within that many days), ``kind`` (repeatable) and
``sort``; ``as_of`` computes it for another day (default today).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BeforeValidator

from triggerpath.domain.worklist import ItemKind, Sort, Worklist, select
from triggerpath.entrypoints.api.deps import State, action
from triggerpath.entrypoints.api.problems import PROBLEM_RESPONSES
from triggerpath.entrypoints.api.routes_records import _iso_date
from triggerpath.services import worklist as service
from triggerpath.services.audit import Call

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)


@router.get("/worklist", response_model=Worklist, tags=["worklist"])
def get_worklist(
    state: State,
    call: Annotated[Call, action("worklist.read")],
    scope: Annotated[Literal["mine", "all"], Query(description="your items or everyone's")] = (
        "all"
    ),
    within_days: Annotated[
        int | None, Query(ge=0, le=365, description="also reassessments opening within N days")
    ] = None,
    kind: Annotated[list[ItemKind] | None, Query(description="only these kinds")] = None,
    sort: Annotated[Sort, Query(description="priority, due, patient or kind")] = "priority",
    as_of: Annotated[
        date | None,
        BeforeValidator(_iso_date),
        Query(description="the date to compute for, YYYY-MM-DD (default today)"),
    ] = None,
) -> Worklist:
    """Reassessments due and overdue (2-4 weeks after the first session, S003.12), sessions
    planned today, sessions awaiting attestation, unsigned assessments, plans and procedure
    notes, drafts, and episodes beyond the course limit without re-evaluation (S000.20).
    Each item links to its record; ``counts`` are per kind after the filters."""
    day = as_of or state.today()
    found = call.run(lambda uow, note: service.worklist(uow, note, state.kb, as_of=day))
    username = call.actor.username if scope == "mine" else None
    return select(found, username=username, within_days=within_days, kinds=kind or (), sort=sort)
