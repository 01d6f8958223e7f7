"""The patient banner: who this is, on every patient screen and every generated document.

Two identifiers (name and date of birth) with the MRN, the age on the day (computed with
``as_of``, domain/identity.py), sex, and the allergy and contraindication flags of the
patient's latest recorded assessment (the engine's own reason and caution codes, named from
the knowledge base's contraindications). A patient registered before
identity was kept shows "name not recorded" and is flagged ``identity_missing`` so the page
can say so loudly; under the clinic policy ``patient_identifiers = minimal`` the banner says
the EHR holds the identity instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from triggerpath.domain.identity import NOT_RECORDED, age_on, display_name
from triggerpath.domain.policy import IdentifierPolicy
from triggerpath.knowledge.loader import Knowledge
from triggerpath.services.model import Record
from triggerpath.services.payloads import PatientData

FLAG_PREFIX = "contraindication."


@dataclass(frozen=True, slots=True)
class Flag:
    code: str
    name: str
    severity: str  # absolute | relative
    statement_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PatientBanner:
    """A patient as the banner shows them (templates read ``pd.mrn`` etc. from it as from
    :class:`PatientData`)."""

    data: PatientData
    name: str
    age_years: int | None
    flags: tuple[Flag, ...]
    #: when the flags were recorded (the latest assessment's date); None: no assessment yet
    flags_as_of: date | None
    policy: IdentifierPolicy = "two_identifiers"

    @property
    def mrn(self) -> str:
        return self.data.mrn

    @property
    def sex(self) -> str:
        return self.data.sex

    @property
    def birth_date(self) -> date | None:
        return self.data.birth_date

    @property
    def birth_year(self) -> int | None:
        return self.data.birth_year

    @property
    def family_name(self) -> str | None:
        return self.data.family_name

    @property
    def given_name(self) -> str | None:
        return self.data.given_name

    @property
    def name_recorded(self) -> bool:
        return self.name != NOT_RECORDED

    @property
    def identity_missing(self) -> bool:
        """Fewer than two identifiers where the policy requires them (a legacy record)."""
        return self.policy == "two_identifiers" and (
            not self.name_recorded or self.data.birth_date is None
        )

    @property
    def born(self) -> str:
        """The date of birth as shown: ISO date, or the year for records before 0006."""
        if self.data.birth_date is not None:
            return self.data.birth_date.isoformat()
        if self.data.birth_year is not None:
            return f"{self.data.birth_year} (date not recorded)"
        return "not recorded"


def contraindication_flags(result: dict[str, Any], kb: Knowledge) -> tuple[Flag, ...]:
    """The contraindications the engine found in one stored result: absolute ones are
    reasons coded ``contraindication.<id>``, relative ones cautions coded ``<id>``."""
    known = {c.id: c for c in kb.pathway.contraindications}
    found: dict[str, Flag] = {}
    for group in ("reasons", "cautions", "findings"):
        for item in result.get(group) or ():
            cid = str(item.get("code", "")).removeprefix(FLAG_PREFIX)
            c = known.get(cid)
            if c is not None and cid not in found:
                found[cid] = Flag(cid, c.name, c.severity, tuple(c.statement_ids))
    return tuple(found.values())


def _latest(assessments: Iterable[Record]) -> Record | None:
    active = [a for a in assessments if a.status == "active"]
    return max(active, key=lambda a: (str(a.current.data.get("as_of")), a.created_at), default=None)


def banner_of(
    patient: PatientData,
    assessments: Sequence[Record],
    kb: Knowledge,
    *,
    as_of: date,
    policy: IdentifierPolicy = "two_identifiers",
) -> PatientBanner:
    """The banner of ``patient`` on ``as_of``, flags from the latest of ``assessments``."""
    latest = _latest(assessments)
    flags: tuple[Flag, ...] = ()
    flags_as_of: date | None = None
    if latest is not None:
        flags = contraindication_flags(latest.current.data.get("result") or {}, kb)
        flags_as_of = date.fromisoformat(str(latest.current.data["as_of"]))
    if patient.birth_date is not None:
        age: int | None = age_on(patient.birth_date, as_of)
    else:
        age = as_of.year - patient.birth_year if patient.birth_year else None
    return PatientBanner(
        data=patient,
        name=display_name(patient.family_name, patient.given_name),
        age_years=age,
        flags=flags,
        flags_as_of=flags_as_of,
        policy=policy,
    )
