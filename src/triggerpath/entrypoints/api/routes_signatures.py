"""Signatures and addenda under /api/v1, for every signable kind (assessments, plans, sessions).

::

    POST /<path>/{record_id}/sign      the version you read + your password   <kind>.sign
    POST /<path>/{record_id}/addenda   text added to a signed record (201)    <kind>.addendum
    GET  /<path>/{record_id}/addenda   the record's addenda, oldest first      <kind>.read

A void is ``POST /<path>/{record_id}/retract`` (entered in error, with a reason; a signed
record keeps its signature). The rules are the services' (:mod:`triggerpath.services.signatures`
and the safety kernel): the web app calls the same functions.

(No ``from __future__ import annotations``: the route factory builds annotations from local
variables, which FastAPI must be able to evaluate.)
"""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Response

from triggerpath.entrypoints.api.deps import State, action
from triggerpath.entrypoints.api.problems import PROBLEM_JSON, PROBLEM_RESPONSES, Problem
from triggerpath.entrypoints.api.routes_records import PRECONDITION, SPECS, IfMatch, KindRoutes
from triggerpath.services import records, signatures
from triggerpath.services.audit import Call
from triggerpath.services.model import SIGNABLE, Addendum
from triggerpath.services.payloads import AddendumIn, Signature

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
SIGN_RESPONSES: dict[int | str, dict[str, Any]] = {
    **PRECONDITION,
    429: {
        "model": Problem,
        "description": "Too many wrong passwords (see Retry-After), as for sign-ins",
        "content": {PROBLEM_JSON: {}},
    },
    503: {
        "model": Problem,
        "description": "Busy checking passwords: try again shortly",
        "content": {PROBLEM_JSON: {}},
    },
}


def _sign_route(k: KindRoutes) -> None:
    @router.post(
        f"/{k.path}/{{record_id}}/sign",
        response_model=k.public,
        operation_id=f"sign_{k.kind}",
        summary=f"Sign a {k.kind} with your password; its content is then immutable",
        tags=[k.path],
        description=f"Roles: {k.roles('sign')} (only your own {k.kind}). A wrong password: "
        "403, nothing signed; repeated failures are throttled like sign-ins (429).",
        responses=SIGN_RESPONSES,
    )
    def sign(
        record_id: UUID,
        body: Signature,
        state: State,
        response: Response,
        call: Annotated[Call, action(k.action("sign"))],
        if_match: IfMatch = None,
    ) -> Any:
        record = signatures.sign(
            call,
            state.guard,
            k.kind,
            record_id,
            password=body.password,
            expected=body.version,
            if_match=if_match,
        )
        response.headers["ETag"] = records.etag(record)
        return k.show(record, state)


def _addenda_routes(k: KindRoutes) -> None:
    @router.post(
        f"/{k.path}/{{record_id}}/addenda",
        status_code=201,
        response_model=Addendum,
        operation_id=f"add_{k.kind}_addendum",
        summary=f"Add an addendum to a signed {k.kind}",
        tags=[k.path],
        description=f"Roles: {k.roles('addendum')} (the signer or a clinician).",
    )
    def add(
        record_id: UUID,
        body: AddendumIn,
        call: Annotated[Call, action(k.action("addendum"))],
    ) -> Addendum:
        return signatures.addendum(call, k.kind, record_id, text=body.text)

    @router.get(
        f"/{k.path}/{{record_id}}/addenda",
        response_model=list[Addendum],
        operation_id=f"list_{k.kind}_addenda",
        summary=f"The addenda of a {k.kind}, oldest first",
        tags=[k.path],
    )
    def list_addenda(
        record_id: UUID, call: Annotated[Call, action(k.action("read"))]
    ) -> list[Addendum]:
        found: list[Addendum] = call.run(
            lambda uow, note: records.addenda(uow, note, k.kind, record_id)
        )
        return found


for _kind in sorted(SIGNABLE):
    _sign_route(SPECS[_kind])
    _addenda_routes(SPECS[_kind])
