"""The clinician's home screen: the worklist (issue 17 §2), and its counts in the navigation.

``/app/`` is the worklist of :mod:`triggerpath.services.worklist` (the same use case as
``GET /api/v1/worklist``), filtered by the query: ``scope`` (``mine``, the default, or
``all``), ``within`` (days: also show reassessments whose window opens that soon),
``kind`` and ``sort``. Each row links to the page where the action is done. An admin,
who sees no clinical content, is sent to the admin screens instead.

The navigation shows how many items are the signed-in user's (computed at most once a
minute per user, :func:`nav_counts`; each computation is one audited call).
"""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from triggerpath.domain.worklist import (
    ITEM_KINDS,
    LABELS,
    SORTS,
    Sort,
    WorkItem,
    Worklist,
    select,
)
from triggerpath.entrypoints.web.support import (
    PAGE_CONTEXT,
    PREFIX,
    Web,
    WebRoute,
    WebSession,
    page,
    redirect,
)
from triggerpath.services import worklist as service

router = APIRouter(route_class=WebRoute, include_in_schema=False)

#: action -> (link text, path under /app; formatted with the item's fields)
ACTIONS: dict[str, tuple[str, str]] = {
    "assess": ("Assess", "/episodes/{episode_id}/assess"),
    "course": ("Open the course", "/episodes/{episode_id}/course"),
    "follow_up": ("Record the reassessment", "/episodes/{episode_id}/outcomes/new"),
    "reevaluate": ("Re-evaluate (new assessment)", "/episodes/{episode_id}/assess"),
    "record_session": (
        "Record the session",
        "/episodes/{episode_id}/sessions/new?plan={record_id}",
    ),
    "replan": ("Open the plan", "/plans/{record_id}"),
    "attest": ("Review and attest", "/records/session/{record_id}"),
    "sign": ("Review and sign", "/records/{record_kind}/{record_id}"),
}
WINDOWS = (0, 7, 14, 28)
SORT_LABELS = {"priority": "Priority", "due": "Due date", "patient": "Patient", "kind": "Status"}


def action_link(item: WorkItem) -> tuple[str, str]:
    text, path = ACTIONS[item.action]
    return text, PREFIX + path.format(**item.model_dump(mode="json"))


def compute(web: WebSession) -> Worklist:
    found: Worklist = web.run(
        "worklist.read",
        lambda uow, note: service.worklist(uow, note, web.state.kb, as_of=web.today),
    )
    return found


@router.get(f"{PREFIX}/")
def worklist_page(
    request: Request,
    web: Web,
    scope: Annotated[str, Query(pattern="^(mine|all)$")] = "mine",
    within_text: Annotated[str, Query(alias="within", max_length=3)] = "",
    kind: Annotated[str, Query(max_length=40)] = "",
    sort: Annotated[str, Query(max_length=20)] = "priority",
) -> Response:
    if web.actor.role == "admin":
        return redirect(f"{PREFIX}/admin")
    within = min(int(within_text), 365) if within_text.isdigit() else None
    full = compute(web)
    _remember(web, full)
    kinds = [k for k in ITEM_KINDS if k == kind]
    order: Sort = next((s for s in SORTS if s == sort), "priority")
    username = web.actor.username if scope == "mine" else None
    mine_or_all = select(full, username=username, within_days=within)
    shown = select(full, username=username, within_days=within, kinds=kinds, sort=order)
    return page(
        request,
        "worklist.html",
        web,
        wl=shown,
        counts=mine_or_all.counts,
        rows=[(i, *action_link(i)) for i in shown.items],
        scope=scope,
        within=within,
        kind=kind,
        sort=order,
        kinds=ITEM_KINDS,
        labels=LABELS,
        windows=WINDOWS,
        sorts=SORT_LABELS,
    )


# --------------------------------------------------------------------------- navigation
NAV_TTL_SECONDS = 60.0
_nav: dict[str, tuple[float, int]] = {}
_nav_lock = threading.Lock()


def _remember(web: WebSession, full: Worklist) -> None:
    total = select(full, username=web.actor.username).counts["total"]
    with _nav_lock:
        _nav[web.actor.username] = (time.monotonic(), total)


def nav_counts(web: WebSession | None) -> dict[str, Any] | None:
    """The signed-in user's open items for the navigation (None for admins, signed out)."""
    if web is None or not web.can("worklist.read"):
        return None
    with _nav_lock:
        cached = _nav.get(web.actor.username)
    if cached is None or time.monotonic() - cached[0] > NAV_TTL_SECONDS:
        _remember(web, compute(web))
        with _nav_lock:
            cached = _nav[web.actor.username]
    return {"mine": cached[1]}


PAGE_CONTEXT.append(lambda web: {"nav_counts": nav_counts(web)})


def forget(username: str) -> None:
    """Drop a user's cached count (after they signed, attested or voided something)."""
    with _nav_lock:
        _nav.pop(username, None)
