"""JSON bodies read within bounds before FastAPI parses them (issue 12 §4).

FastAPI reads a body with ``json.loads``: an integer of thousands of digits or very
deep nesting then fails outside ``JSONDecodeError`` and comes back as a 400 without a
field. :class:`BoundedJSONRoute` first checks the body with the engine's bounded reader
(:func:`triggerpath.domain.jsontext.loads`: size, number length, NaN, depth) and answers
422 problem details naming ``(body)`` when a bound is crossed; a body within the bounds
goes on to FastAPI unchanged. Malformed JSON keeps the house rule (400, from FastAPI).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from triggerpath.domain import jsontext
from triggerpath.entrypoints.api.problems import FieldError, problem_response
from triggerpath.errors import InvalidInput


def _bounds_problem(body: bytes) -> list[FieldError] | None:
    """The bound a JSON body crosses, or None (malformed JSON is left to FastAPI)."""
    try:
        jsontext.loads(body.decode("utf-8"), "(body)")
    except UnicodeDecodeError:
        return None
    except InvalidInput as exc:
        if any("not valid JSON" in p.reason for p in exc.problems):
            return None
        return [FieldError(field=p.field, reason=p.reason) for p in exc.problems]
    except json.JSONDecodeError:  # pragma: no cover - loads turns these into InvalidInput
        return None
    return None


class BoundedJSONRoute(APIRoute):
    """An API route whose JSON body is checked against the bounded reader first."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler: refuse an out-of-bounds body with 422 before parsing."""
        handler = super().get_route_handler()

        async def bounded(request: Request) -> Response:
            if request.method in ("POST", "PUT", "PATCH"):
                body = await request.body()
                problems = _bounds_problem(body) if body else None
                if problems:
                    return problem_response(
                        request, 422, "the body is outside TriggerPath's bounds", errors=problems
                    )
            return await handler(request)

        return bounded
