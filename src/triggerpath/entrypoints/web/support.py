"""What every web view needs: templates, the signed-in clinician, CSRF, error pages.

The web app signs people in with the same server-side sessions as the API (cookie
``tp_session``, Argon2 passwords, roles from the database) and audits every read and
write through the same :class:`~triggerpath.services.audit.Call`. Forms carry the
session's CSRF token in a hidden ``csrf`` field (fetch calls send the ``X-CSRF-Token``
header). A missing or expired session sends the browser to the login page with the page
to come back to; forms keep a draft in the browser so nothing typed is lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from triggerpath.entrypoints.api.deps import (
    AppState,
    actor_from_session,
    get_state,
    request_id,
)
from triggerpath.entrypoints.web.banner import with_banner
from triggerpath.errors import Conflict, InvalidInput, NotFound
from triggerpath.knowledge.review import NOTICE, review_of
from triggerpath.services import auth
from triggerpath.services.audit import AuditNote, Call
from triggerpath.services.model import Actor
from triggerpath.services.uow import UnitOfWork

PREFIX = "/app"
CSRF_FIELD = "csrf"
VERDICT_LABELS = {
    "urgent_referral": "Urgent referral",
    "not_indicated": "TPI not indicated",
    "insufficient_findings": "Insufficient findings",
    "contraindicated": "Contraindicated",
    "conservative_care_first": "Conservative care first",
    "tpi_appropriate": "TPI appropriate",
}


#: What each kind of record is called on a page, and what each verb does to it.
_KIND_WORDS = {
    "patient": "a patient",
    "episode": "an episode",
    "assessment": "an assessment",
    "plan": "a procedure plan",
    "session": "a session",
    "outcome": "a follow-up",
    "document": "a document",
}
_VERB_WORDS = {
    "create": "record",
    "correct": "correct",
    "retract": "mark as entered in error",
    "sign": "sign",
    "attest": "attest",
}
_ROLE_WORDS = {"clinician": "a clinician", "nurse": "a nurse", "admin": "an administrator"}
_FORBIDDEN = re.compile(r"role '(?P<role>\w+)' may not perform '(?P<action>[\w.]+)'")


def refusal_text(message: str) -> str:
    """A role refusal in plain words: what was refused, and who can do it instead."""
    found = _FORBIDDEN.fullmatch(message)
    if found is None:
        return message
    role, action = found["role"], found["action"]
    kind, _, verb = action.partition(".")
    what = (
        f"{_VERB_WORDS[verb]} {_KIND_WORDS[kind]}"
        if kind in _KIND_WORDS and verb in _VERB_WORDS
        else action.replace(".", " ").replace("_", " ")
    )
    who = sorted(auth.PERMISSIONS.get(action, frozenset()))
    ask = " or ".join(_ROLE_WORDS.get(r, r) for r in who if r != "viewer")
    return (
        f"Your role ({role}) cannot {what}. Nothing was saved."
        + (f" Ask {ask} to do it." if ask else "")
        + " Anything you typed is kept as a draft in this browser."
    )


class NeedLogin(Exception):
    """No valid session: go to the login page and come back to ``next_url``."""

    def __init__(self, next_url: str) -> None:
        super().__init__("login required")
        self.next_url = next_url


class BadCsrf(Exception):
    """A form arrived without this session's CSRF token."""


def _field_label(name: str) -> str:
    from triggerpath.entrypoints.web.forms import plain_field

    return plain_field(name)


@cache
def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("triggerpath.entrypoints.web", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ids"] = lambda ids: "[" + ", ".join(ids) + "]" if ids else ""
    env.filters["label"] = lambda code: str(code).replace("_", " ")
    env.filters["verdict"] = lambda v: VERDICT_LABELS.get(v, v)
    env.filters["field_label"] = _field_label
    env.globals["prefix"] = PREFIX
    return env


def cited_ids(data: Any) -> list[str]:
    """Every statement id cited anywhere in ``data`` (a model or its dump), first-seen order:
    a page lists each paraphrase once and links to it from where it is cited."""
    found: dict[str, None] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "statement_ids" and isinstance(value, list):
                    found.update(dict.fromkeys(str(v) for v in value))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data.model_dump(mode="json") if hasattr(data, "model_dump") else data)
    return list(found)


def static_file(name: str) -> bytes | None:
    """A file of ``static/`` (flat names only), or None."""
    if "/" in name or name.startswith("."):
        return None
    ref = resources.files("triggerpath.entrypoints.web").joinpath("static", name)
    return ref.read_bytes() if ref.is_file() else None


@dataclass(frozen=True)
class WebSession:
    """The signed-in user for this request."""

    actor: Actor
    token: str
    csrf: str
    state: AppState
    request: Request

    def call(self, action: str) -> Call:
        """An audited call for ``action`` (one audit event, whatever happens)."""
        return Call(
            self.state.uow_factory, self.actor, action, request_id(self.request), self.state.clock()
        )

    def run(self, action: str, fn: Callable[[UnitOfWork, AuditNote], Any]) -> Any:
        return self.call(action).run(fn)

    @property
    def today(self) -> date:
        return self.state.today()

    def can(self, action: str) -> bool:
        return auth.allowed(self.actor.role, action)


def _here(request: Request) -> str:
    url = request.url.path
    if request.url.query and request.method == "GET":
        url += "?" + request.url.query
    return url


def web_session(request: Request, state: Annotated[AppState, Depends(get_state)]) -> WebSession:
    """The signed-in user, or :class:`NeedLogin`; POSTs must carry the CSRF token."""
    token = request.cookies.get(auth.SESSION_COOKIE)
    if not token:
        raise NeedLogin(_here(request))
    try:
        actor = actor_from_session(state, token)  # idle timeout, token version (issue 14)
    except auth.Unauthenticated:
        raise NeedLogin(_here(request)) from None
    return WebSession(actor, token, auth.csrf_token(state.secret_key, token), state, request)


Web = Annotated[WebSession, Depends(web_session)]


def _review_line(web: WebSession | None) -> str | None:
    """The one line a signed-in page shows while knowledge content awaits clinical review."""
    if web is None:
        return None
    log = review_of(web.state.kb)
    pending = log.pending()
    if not pending:
        return None
    return (
        f"{NOTICE}: {len(pending)} of {len(log.items)} knowledge items await clinical review "
        "(triggerpath knowledge review-status)."
    )


#: Context every page gets from elsewhere (views_worklist adds the navigation counts).
PAGE_CONTEXT: list[Callable[[WebSession | None], dict[str, Any]]] = []


def page(
    request: Request,
    template: str,
    web: WebSession | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    context = with_banner(web, context)  # every patient page: the patient banner
    html = (
        templates()
        .get_template(template)
        .render(
            request=request,
            web=web,
            actor=web.actor if web else None,
            csrf=web.csrf if web else "",
            review_line=_review_line(web),
            **{k: v for extra in PAGE_CONTEXT for k, v in extra(web).items()},
            **context,
        )
    )
    return HTMLResponse(html, status_code=status_code)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def login_url(next_url: str) -> str:
    return f"{PREFIX}/login?next={quote(next_url, safe='')}"


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    return page(request, "error.html", None, status_code=status, title=title, detail=detail)


class WebRoute(APIRoute):
    """Turns login, permission and record errors into pages instead of problem JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except NeedLogin as exc:
                if request.url.path.startswith(f"{PREFIX}/api/"):
                    return Response(
                        '{"error": "session expired: sign in again"}',
                        status_code=401,
                        media_type="application/json",
                    )
                return redirect(login_url(exc.next_url))
            except BadCsrf:
                return error_page(
                    request,
                    403,
                    "Form expired",
                    "This form was opened in an earlier session. Go back, reload the page and "
                    "send it again: your draft is kept in this browser.",
                )
            except auth.Forbidden as exc:
                return error_page(request, 403, "Not allowed for your role", refusal_text(str(exc)))
            except NotFound as exc:
                return error_page(request, 404, "Not found", str(exc))
            except Conflict as exc:
                return error_page(request, 409, "Changed by someone else", str(exc))
            except InvalidInput as exc:
                return error_page(request, 422, "Invalid input", str(exc))

        return guarded
