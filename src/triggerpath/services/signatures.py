"""Signing, addenda and void: the use cases every entry point (REST, web) calls.

Signing asks for the signer's password again. It is checked in its own transaction, like a
sign-in (:func:`triggerpath.services.auth.confirm_password`: failures are counted on the
account and throttled with the login back-off), before the signature itself runs as one
audited call. A wrong password leaves a ``denied`` event and changes no record; the
signature, when it happens, is a new version carrying ``signed_at``/``signed_by``::

    signatures.sign(call, guard, "plan", plan_id, password=..., expected=2)
    signatures.addendum(call, "plan", plan_id, text="...")
    signatures.void(call, "plan", plan_id, reason="...", expected=3)

Who may do each is the safety kernel's rule (:mod:`triggerpath.services.kernel._signatures`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from uuid import UUID

from triggerpath.services import auth, records
from triggerpath.services.audit import Call
from triggerpath.services.model import Addendum, Kind, Record

T = TypeVar("T")


def confirm(call: Call, guard: auth.LoginGuard, password: str) -> auth.Reauthenticated:
    """The caller's re-entered password, or a ``denied`` event and ``WrongPassword``."""
    call.authorise()  # a role that may not sign is refused before any hash is computed
    try:
        with call.uow_factory() as uow:
            proof = auth.confirm_password(uow, guard, call.actor, password, call.now)
            uow.commit()  # the failure count, like a failed sign-in
    except (auth.Throttled, auth.Busy) as exc:
        call.refuse(exc)
        raise
    if proof is None:
        wrong = auth.WrongPassword("the password is not correct: nothing was signed")
        call.refuse(wrong)
        raise wrong
    return proof


def _on_record(call: Call, use_case: Callable[[records.Write], T]) -> T:
    """Run ``use_case`` on the call's write (its unit of work, note, actor and clock)."""
    return call.run(lambda uow, note: use_case(records.Write(uow, note, call.actor, call.now)))


def sign(
    call: Call,
    guard: auth.LoginGuard,
    kind: Kind,
    record_id: UUID,
    *,
    password: str,
    expected: int,
    if_match: str | None = None,
) -> Record:
    proof = confirm(call, guard, password)
    change = records.Change(expected, if_match=if_match)
    return _on_record(call, lambda w: records.sign(w, kind, record_id, change, proof))


def addendum(call: Call, kind: Kind, record_id: UUID, *, text: str) -> Addendum:
    return _on_record(call, lambda w: records.add_addendum(w, kind, record_id, text))


def void(
    call: Call,
    kind: Kind,
    record_id: UUID,
    *,
    reason: str,
    expected: int,
    if_match: str | None = None,
) -> Record:
    """Mark the record entered in error (it stays in the history with its signature)."""
    change = records.Change(expected, reason, if_match)
    return _on_record(call, lambda w: records.retract(w, kind, record_id, change))
