"""The kernel's rules for signatures, addenda and voids: who may, and on what.

One home for every entry point (REST, web, CLI):

- **sign**: an assessment or a plan by the clinician who recorded it; a session's
  procedure note by its performer (clinician or nurse) once it is attested. A stale plan
  is re-planned first. The role table (``services.auth.PERMISSIONS``) already keeps a
  nurse from signing an assessment or a plan and an admin from every clinical action.
- **addendum**: only on a signed, active record (an unsigned one is corrected instead), by
  its signer or a clinician.
- **void** (entered in error, with a reason): the author or a clinician; once signed, the
  signer or a clinician.
"""

from __future__ import annotations

from triggerpath.domain import integrity as rules
from triggerpath.errors import Conflict, FieldProblem
from triggerpath.services.auth import Forbidden
from triggerpath.services.kernel._context import refuse
from triggerpath.services.model import Actor, Record


def _signer(record: Record) -> str:
    """Who signs ``record``: a session's performer, otherwise its author."""
    if record.kind == "session":
        return str(record.current.data.get("performer") or record.current.data.get("operator"))
    return record.created_by


def admit_signature(actor: Actor, record: Record) -> None:
    """Sign only your own record; a stale plan or an unattested session is not signed."""
    data = record.current.data
    if record.kind == "plan" and data.get("stale"):
        why = data.get("stale_reason") or "its assessment changed"
        refuse(
            [
                rules.problem(
                    "version",
                    "plan.stale",
                    f"this plan is stale ({why}); re-plan it (PUT) before signing",
                )
            ]
        )
    signer = _signer(record)
    if actor.username != signer:
        raise Forbidden(f"only {signer}, who {_did(record)} it, can sign this {record.kind}")
    if record.kind == "session" and data.get("attestation") == "unattested":
        refuse([FieldProblem("version", "attest this session before signing its note")])


def _did(record: Record) -> str:
    return "performed" if record.kind == "session" else "recorded"


def admit_addendum(actor: Actor, record: Record) -> None:
    """Addenda go on signed, active records, by their signer or a clinician."""
    if record.status != "active":
        raise Conflict(f"{record.kind} {record.id} was entered in error; nothing can be added")
    if not record.signed:
        raise Conflict(
            f"{record.kind} {record.id} is not signed: correct it (a new version with a reason) "
            "instead of adding an addendum"
        )
    if actor.role != "clinician" and actor.username != record.current.signed_by:
        raise Forbidden(
            f"only the signer ({record.current.signed_by}) or a clinician can add an addendum"
        )


def admit_retraction(actor: Actor, record: Record) -> None:
    """Void (entered in error): the author or a clinician; once signed, the signer or one."""
    if actor.role == "clinician":
        return
    if record.signed:
        if actor.username != record.current.signed_by:
            raise Forbidden(
                f"only the signer ({record.current.signed_by}) or a clinician can void this "
                f"signed {record.kind}"
            )
        return
    if actor.username != record.created_by:
        raise Forbidden(
            f"only the author ({record.created_by}) or a clinician can retract this {record.kind}"
        )
