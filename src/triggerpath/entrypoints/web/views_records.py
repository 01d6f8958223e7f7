"""Signatures, attestation, addenda and void in the web app (issue 17 §4).

``/app/records/<kind>/<id>`` shows one assessment, plan or session's signature state, its
versions (who, when, why) and addenda, with the forms the signed-in user may use: sign
(re-entering the password), attest, add an addendum, void with a reason. The forms post to
the same use cases as the REST API (:mod:`triggerpath.services.signatures`); whether a
form is offered is asked of the kernel's own rules, so the page never offers what the
service would refuse. A wrong password or a throttled account is explained on the page.

``signature.html`` is the compact block the recommendation, plan and session pages include:
who signed when, or the password field to sign here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from triggerpath.domain.validation import problems_from
from triggerpath.entrypoints.web import forms
from triggerpath.entrypoints.web.common import Posted
from triggerpath.entrypoints.web.support import (
    PREFIX,
    Web,
    WebRoute,
    WebSession,
    page,
    redirect,
    templates,
)
from triggerpath.entrypoints.web.views_worklist import forget
from triggerpath.errors import Conflict, InvalidInput, NotFound
from triggerpath.services import auth, clinical, kernel, records, signatures
from triggerpath.services.audit import AuditNote
from triggerpath.services.episodes import parse_technique, technique_line
from triggerpath.services.model import Addendum, Record, Version
from triggerpath.services.payloads import (
    AddendumIn,
    PatientData,
    Retraction,
    SessionData,
    SessionIn,
)
from triggerpath.services.records import Change, Write
from triggerpath.services.uow import UnitOfWork

router = APIRouter(route_class=WebRoute, include_in_schema=False)

Signable = Literal["assessment", "plan", "session"]
#: the kind's own page in the web app
CLINICAL_PAGE = {"assessment": "assessments", "plan": "plans", "session": "sessions"}
NAMES = {"assessment": "assessment", "plan": "plan", "session": "procedure note"}


def _kind(kind: str) -> Signable:
    if kind not in CLINICAL_PAGE:
        raise NotFound(f"no signable record kind {kind!r}")
    return cast(Signable, kind)


def why_not(check: Callable[[], None]) -> str | None:
    """None when the kernel rule admits the action, else its reason (for the page)."""
    try:
        check()
    except (auth.Forbidden, Conflict, InvalidInput) as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class Offer:
    """What the signed-in user may do with a record, by the kernel's rules."""

    correct: str | None  # None: the correction form (procedure note) is offered
    sign: str | None  # None: the sign form is offered; else why not
    addendum: str | None
    void: str | None
    attest: str | None


def offer(web: WebSession, record: Record) -> Offer:
    actor, kind = web.actor, record.kind

    def gate(action: str, check: Callable[[], None]) -> str | None:
        if not web.can(action):
            return f"your role ({actor.role}) may not do this"
        if record.status != "active":
            return "entered in error"
        return why_not(check)

    signed = "already signed" if record.signed else None
    correct = signed or (None if kind == "session" else "corrected on its own page")
    return Offer(
        correct=correct or gate(f"{kind}.correct", lambda: None),
        sign=signed or gate(f"{kind}.sign", lambda: kernel.admit_signature(actor, record)),
        addendum=gate(f"{kind}.addendum", lambda: kernel.admit_addendum(actor, record)),
        void=gate(f"{kind}.retract", lambda: kernel.admit_retraction(actor, record)),
        attest=gate("session.attest", lambda: kernel.admit_attestation(actor, record))
        if kind == "session"
        else "not a session",
    )


def _offer_of(web: WebSession, record: Record) -> Offer:
    return offer(web, record)


templates().globals["signature_offer"] = _offer_of
templates().globals["record_name"] = lambda kind: NAMES.get(kind, kind)


@dataclass
class Loaded:
    record: Record
    versions: list[Version]
    addenda: list[Addendum]
    patient: PatientData


def _load(web: WebSession, kind: Signable, record_id: UUID) -> Loaded:
    def run(uow: UnitOfWork, note: AuditNote) -> Loaded:
        record, versions = records.history(uow, note, kind, record_id)
        patient = records.get(uow, AuditNote(), "patient", record.patient_id)
        return Loaded(
            record,
            versions,
            uow.records.addenda(record_id),
            PatientData.model_validate(patient.current.data),
        )

    loaded: Loaded = web.run(f"{kind}.history", run)
    return loaded


def _page(
    request: Request,
    web: WebSession,
    kind: Signable,
    record_id: UUID,
    *,
    errors: dict[str, list[str]] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    got = _load(web, kind, record_id)
    return page(
        request,
        "record.html",
        web,
        status_code=status_code,
        kind=kind,
        name=NAMES[kind],
        clinical=f"{PREFIX}/{CLINICAL_PAGE[kind]}/{record_id}",
        got=got,
        record=got.record,
        pd=got.patient,
        can=offer(web, got.record),
        free_note=parse_technique(got.record.current.data.get("note"))[1]
        if kind == "session"
        else "",
        errors=errors or {},
        values=values or {},
    )


@router.get(f"{PREFIX}/records/{{kind}}/{{record_id}}")
def record_page(request: Request, web: Web, kind: str, record_id: UUID) -> HTMLResponse:
    return _page(request, web, _kind(kind), record_id)


def _version(values: forms.Values) -> int:
    text = forms.one(values, "version")
    return int(text) if text.isdigit() else 0


def _back(values: forms.Values, kind: Signable, record_id: UUID) -> str:
    nxt = forms.one(values, "next")
    if nxt.startswith(f"{PREFIX}/") and not nxt.startswith("//"):
        return nxt
    return f"{PREFIX}/records/{kind}/{record_id}"


@router.post(f"{PREFIX}/records/{{kind}}/{{record_id}}/sign")
def sign(request: Request, web: Web, form: Posted, kind: str, record_id: UUID) -> Response:
    k = _kind(kind)
    values = forms.values_of(form)
    password = values.get("password")
    if not isinstance(password, str) or not password:
        errors = {"password": ["Enter your password to sign."]}
        return _page(request, web, k, record_id, errors=errors, status_code=422)
    try:
        signatures.sign(
            web.call(f"{k}.sign"),
            web.state.guard,
            k,
            record_id,
            password=password,
            expected=_version(values),
        )
    except auth.WrongPassword:
        errors = {"password": ["The password is not correct. Nothing was signed."]}
        return _page(request, web, k, record_id, errors=errors, status_code=403)
    except auth.Throttled as exc:
        errors = {
            "password": [
                f"Too many wrong passwords: try again in {exc.retry_after} seconds. "
                "Nothing was signed."
            ]
        }
        return _page(request, web, k, record_id, errors=errors, status_code=429)
    forget(web.actor.username)
    return redirect(_back(values, k, record_id))


def corrected_session(stored: SessionData, text: str) -> SessionIn:
    """The stored session with a new free-text note (the technique line is kept as it was).

    Everything else is sent as stored, so the kernel checks the corrected session again
    against the ledger exactly as an API correction; the operator is the signed-in user.
    """
    details, _ = parse_technique(stored.note)
    note = "\n".join(x for x in (technique_line(details), text.strip()) if x) or None
    return SessionIn(
        performed_at=stored.performed_at,
        performer=stored.performer or stored.operator,
        plan_id=stored.plan_id,
        sites=stored.sites,
        complications=stored.complications,
        note=note,
        exceedance_reason=stored.exceedance_reason,
    )


@router.post(f"{PREFIX}/records/session/{{record_id}}/correct")
def correct_session(request: Request, web: Web, form: Posted, record_id: UUID) -> Response:
    """Correct an unsigned procedure note's text, with the reason (a new version)."""
    values = forms.values_of(form)
    typed = {"note": forms.one(values, "note"), "reason": forms.one(values, "reason")}
    try:
        why = Retraction(version=_version(values) or 1, reason=typed["reason"])
    except ValidationError as err:
        errors = {f"correct-{k}": v for k, v in _field_errors(err).items()}
        return _page(
            request, web, "session", record_id, errors=errors, values=typed, status_code=422
        )
    got = _load(web, "session", record_id)
    body = corrected_session(SessionData.model_validate(got.record.current.data), typed["note"])
    try:
        web.run(
            "session.correct",
            lambda uow, note: clinical.correct(
                Write(uow, note, web.actor, web.state.clock(), web.state.kb, web.today),
                "session",
                record_id,
                Change(why.version, why.reason),
                body,
            ),
        )
    except InvalidInput as exc:
        errors = {"correct-note": [p.reason for p in exc.problems]}
        return _page(
            request, web, "session", record_id, errors=errors, values=typed, status_code=422
        )
    forget(web.actor.username)
    return redirect(f"{PREFIX}/records/session/{record_id}")


@router.post(f"{PREFIX}/records/session/{{record_id}}/attest")
def attest(web: Web, form: Posted, record_id: UUID) -> Response:
    values = forms.values_of(form)
    web.run(
        "session.attest",
        lambda uow, note: records.attest(
            Write(uow, note, web.actor, web.state.clock()), record_id, Change(_version(values))
        ),
    )
    forget(web.actor.username)
    return redirect(_back(values, "session", record_id))


def _field_errors(err: ValidationError) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in problems_from(err):
        out.setdefault(p.field, []).append(p.reason)
    return out


@router.post(f"{PREFIX}/records/{{kind}}/{{record_id}}/addenda")
def addendum(request: Request, web: Web, form: Posted, kind: str, record_id: UUID) -> Response:
    k = _kind(kind)
    values = forms.values_of(form)
    try:
        body = AddendumIn(text=forms.one(values, "text"))
    except ValidationError as err:
        typed = {"text": forms.one(values, "text")}
        return _page(
            request, web, k, record_id, errors=_field_errors(err), values=typed, status_code=422
        )
    signatures.addendum(web.call(f"{k}.addendum"), k, record_id, text=body.text)
    return redirect(f"{PREFIX}/records/{k}/{record_id}#addenda")


@router.post(f"{PREFIX}/records/{{kind}}/{{record_id}}/void")
def void(request: Request, web: Web, form: Posted, kind: str, record_id: UUID) -> Response:
    k = _kind(kind)
    values = forms.values_of(form)
    try:
        body = Retraction(version=_version(values) or 1, reason=forms.one(values, "reason"))
    except ValidationError as err:
        typed = {"reason": forms.one(values, "reason")}
        return _page(
            request, web, k, record_id, errors=_field_errors(err), values=typed, status_code=422
        )
    signatures.void(
        web.call(f"{k}.retract"), k, record_id, reason=body.reason, expected=_version(values)
    )
    return redirect(f"{PREFIX}/records/{k}/{record_id}")


__all__ = ["Offer", "offer", "router", "why_not"]
