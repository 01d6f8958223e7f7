"""Patient identity: the one rule for names, date of birth and sex, and the age on a date.

Wrong-patient errors are among the commonest patient-safety hazards; the standard is two
identifiers (here: name and date of birth) on every screen and document, besides the MRN
(The Joint Commission, National Patient Safety Goal NPSG.01.01.01). Every entry point that
writes a patient (REST API, web form, CLI demo data, imports) reaches this rule through the
safety kernel (``services.kernel.admit_patient``), so a name or date of birth is checked the
same way whichever path it came by. Text is never altered: it is stored as typed or refused
naming the field.

- ``family_name`` and ``given_name`` (one or more given names, space-separated): 1 to
  :data:`NAME_MAX_CHARS` characters, at least one letter, only letters (any script), combining
  marks, spaces, apostrophes, hyphens and full stops; no control character (domain/text.py),
  no digit (``Sm1th`` is a typing error, not a name), no leading or trailing space.
- ``birth_date`` not in the future (with the easternmost time zone's allowance) and not more
  than :data:`MAX_AGE_YEARS` years ago.
- ``sex`` from FHIR R4 AdministrativeGender (``male | female | other | unknown``); there is
  no default: whoever registers the patient says which, ``unknown`` included.

Clinic policy ``patient_identifiers``: ``two_identifiers`` (default) requires both names and
the date of birth on every new write; ``minimal`` (a clinic embedding TriggerPath in an EHR
that holds the identity) requires only the MRN and sex, and still checks what is given.
Patients registered before identity was kept (migration 0006) have no names: they stay
readable, every screen and document says "name not recorded" loudly, and the next correction
must add the names (it is a new write and meets this rule).
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime
from typing import Literal, get_args

from triggerpath.domain.integrity import future_date_problem, problem
from triggerpath.domain.policy import IdentifierPolicy
from triggerpath.domain.text import text_problem
from triggerpath.errors import FieldProblem, RuleProblem

#: FHIR R4 AdministrativeGender (http://hl7.org/fhir/administrative-gender).
Sex = Literal["female", "male", "other", "unknown"]
SEXES: tuple[Sex, ...] = get_args(Sex)
#: Longest family or given name(s) accepted, in characters.
NAME_MAX_CHARS = 100
#: Oldest plausible age. The oldest verified human lived 122 years and 164 days (Jeanne
#: Calment, 1875-1997; Guinness World Records): a birth date further back is a typing error.
MAX_AGE_YEARS = 125
#: Stable rule ids (clients and the hazard log name them), besides ``time.future``.
RULES = ("identity.required", "identity.name_invalid", "identity.birth_date_implausible")
NAME_FIELDS = ("family_name", "given_name")
_NAME_PUNCTUATION = frozenset(" '’-.")
NOT_RECORDED = "name not recorded"


def _problem(field: str, rule: str, reason: str) -> RuleProblem:
    assert rule in RULES, rule
    return RuleProblem(field, reason, rule, ())


def _name_char_ok(ch: str) -> bool:
    return ch in _NAME_PUNCTUATION or unicodedata.category(ch)[0] in ("L", "M")


def name_problem(field: str, value: str) -> FieldProblem | None:
    """What is wrong with ``value`` as a family or given name, or ``None``."""
    control = text_problem(value, field)
    if control is not None:
        return RuleProblem(field, control.reason, "text.control_character", ())
    if not value.strip():
        return _problem(field, "identity.required", "enter the name (it is blank)")
    if len(value) > NAME_MAX_CHARS:
        return _problem(
            field, "identity.name_invalid", f"at most {NAME_MAX_CHARS} characters ({len(value)})"
        )
    if value != value.strip():
        return _problem(field, "identity.name_invalid", "no space before or after the name")
    bad = sorted({ch for ch in value if not _name_char_ok(ch)})
    if bad:
        shown = " ".join(repr(c) for c in bad[:5])
        return _problem(
            field,
            "identity.name_invalid",
            f"{shown} cannot be part of a name (letters, spaces, ' - and . only)",
        )
    if not any(unicodedata.category(ch)[0] == "L" for ch in value):
        return _problem(field, "identity.name_invalid", "a name needs at least one letter")
    return None


def birth_date_problem(birth_date: date, now: datetime) -> FieldProblem | None:
    """A date of birth in the future, or more than :data:`MAX_AGE_YEARS` years ago."""
    future = future_date_problem("birth_date", birth_date, now)
    if future is not None:
        return future
    age = age_on(birth_date, now.date())
    if age > MAX_AGE_YEARS:
        return _problem(
            "birth_date",
            "identity.birth_date_implausible",
            f"{birth_date.isoformat()} would make the patient {age} years old (more than "
            f"{MAX_AGE_YEARS}): check the year",
        )
    return None


def identity_problems(
    *,
    family_name: str | None,
    given_name: str | None,
    birth_date: date | None,
    now: datetime,
    policy: IdentifierPolicy = "two_identifiers",
) -> list[FieldProblem]:
    """Every problem with a patient's names and date of birth under the clinic's policy."""
    problems: list[FieldProblem] = []
    required = policy == "two_identifiers"
    for field, value in zip(NAME_FIELDS, (family_name, given_name), strict=True):
        if value is None:
            if required:
                problems.append(_missing(field))
            continue
        found = name_problem(field, value)
        if found is not None:
            problems.append(found)
    if birth_date is None:
        if required:
            problems.append(_missing("birth_date"))
    elif (found := birth_date_problem(birth_date, now)) is not None:
        problems.append(found)
    return problems


def _missing(field: str) -> RuleProblem:
    what = {"family_name": "family name", "given_name": "given name(s)"}.get(field, "date of birth")
    return _problem(
        field,
        "identity.required",
        f"the {what} is required: two identifiers (name and date of birth) on every record "
        "(clinic policy patient_identifiers = two_identifiers)",
    )


def age_on(birth_date: date, as_of: date) -> int:
    """Completed years of age on ``as_of`` (a 29 February birthday falls on 1 March)."""
    before_birthday = (as_of.month, as_of.day) < (birth_date.month, birth_date.day)
    return as_of.year - birth_date.year - int(before_birthday)


def display_name(family_name: str | None, given_name: str | None) -> str:
    """``FAMILY, Given`` (family name in capitals, as wristbands print it), or "name not
    recorded" when neither is kept."""
    if not family_name and not given_name:
        return NOT_RECORDED
    family = (family_name or "(family name not recorded)").upper()
    return f"{family}, {given_name}" if given_name else family


def search_key(*parts: str | None) -> str:
    """The case- and accent-insensitive form names are searched by (``Müller`` ~ ``muller``)."""
    text = " ".join(p for p in parts if p)
    folded = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in folded if not unicodedata.combining(c)).split())


def onset_before_birth(onset: date | None, birth_date: object) -> FieldProblem | None:
    """An onset in the year of birth but before the birthday (``integrity.onset_problem``
    already refuses an onset in an earlier year)."""
    if onset is None or not isinstance(birth_date, str):
        return None
    born = date.fromisoformat(birth_date)
    if onset >= born or onset.year < born.year:
        return None
    return problem("onset", "time.before_birth", f"{onset.isoformat()} is before the date of birth")
