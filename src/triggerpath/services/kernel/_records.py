"""The kernel's rules for patients, episodes, assessments, outcomes and authorship."""

from __future__ import annotations

from datetime import datetime

from triggerpath.domain import identity
from triggerpath.domain import integrity as rules
from triggerpath.errors import FieldProblem
from triggerpath.services.auth import Forbidden
from triggerpath.services.kernel._context import Context, _present, admit_text, refuse
from triggerpath.services.model import Actor, Record
from triggerpath.services.payloads import AssessmentIn, EpisodeData, OutcomeData, PatientData


# --------------------------------------------------------------------------- simple kinds
def admit_patient(ctx: Context, data: PatientData) -> PatientData:
    """Names and date of birth by the one identity rule (domain/identity.py) under the clinic
    policy's ``patient_identifiers``; a year of birth in the future is a typing error, and one
    that contradicts the date of birth is refused. Returns what to store (the year of birth
    kept from the date of birth, for the rules that read the year)."""
    admit_text(data.model_dump(mode="json"))
    problems = identity.identity_problems(
        family_name=data.family_name,
        given_name=data.given_name,
        birth_date=data.birth_date,
        now=ctx.now,
        policy=ctx.policy.patient_identifiers,
    )
    year = data.birth_year
    if data.birth_date is not None:
        if year is not None and year != data.birth_date.year:
            problems.append(
                FieldProblem("birth_year", f"{year} is not the year of birth_date; send one")
            )
        year = data.birth_date.year
    elif year is not None and year > ctx.today.year:
        problems.append(
            rules.problem("birth_year", "time.future", f"{year} is a year still to come")
        )
    refuse(problems)
    return data.model_copy(update={"birth_year": year})


def admit_episode(ctx: Context, patient: Record, data: EpisodeData) -> None:
    """Onset and closing date not in the future; onset not before the patient was born."""
    admit_text(data.model_dump(mode="json"))
    birth_year = patient.current.data.get("birth_year")
    birth_date = patient.current.data.get("birth_date")
    refuse(
        _present(
            rules.future_date_problem("onset", data.onset, ctx.now) if data.onset else None,
            rules.future_date_problem("closed_on", data.closed_on, ctx.now)
            if data.closed_on
            else None,
            rules.onset_problem(data.onset, birth_year if isinstance(birth_year, int) else None),
            identity.onset_before_birth(data.onset, birth_date),
        )
    )


def admit_assessment(ctx: Context, body: AssessmentIn) -> None:
    """An assessment made for a date still to come is refused (the engine uses ``as_of``)."""
    admit_text(body.model_dump(mode="json"))
    if body.as_of is not None:
        refuse(_present(rules.future_date_problem("as_of", body.as_of, ctx.now)))


def admit_outcome(ctx: Context, episode: Record, data: OutcomeData) -> None:
    """The value in its instrument's range, not in the future, not before its session."""
    admit_text(data.model_dump(mode="json"))
    problems = rules.outcome_value_problems(
        data.instrument, data.value, data.items, ctx.kb, ctx.bounds
    )
    problems += _present(rules.future_date_problem("measured_on", data.measured_on, ctx.now))
    if data.session_id is not None:
        session = ctx.uow.records.get(data.session_id)
        if session is None or session.kind != "session" or session.parent_id != episode.id:
            problems.append(FieldProblem("session_id", "not a session of this episode"))
        elif data.relation is not None:
            day = datetime.fromisoformat(session.current.data["performed_at"]).date()
            check = rules.follow_up_problem if data.relation == "after" else rules.baseline_problem
            problems += _present(check(data.measured_on, day))
    refuse(problems)


# --------------------------------------------------------------------------- authorship
def admit_attestation(actor: Actor, record: Record) -> None:
    """Only the performer named on an unattested session may attest it."""
    data = record.current.data
    if data.get("attestation") != "unattested":
        refuse([FieldProblem("version", "this session needs no attestation")])
    if data.get("performer") != actor.username:
        raise Forbidden(f"only the performer ({data.get('performer')}) can attest this session")
