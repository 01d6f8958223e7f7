"""The engine's answer: one ``Recommendation`` that every adapter renders.

CLI text, JSON, web pages, PDFs, CDS Hooks cards and FHIR GuidanceResponses all
render this object; none of them recomputes or rephrases the decision.
"""

from __future__ import annotations

from datetime import date
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from triggerpath.knowledge.schema import RedirectCode

#: The verdicts, written in precedence order: when several apply, the first wins.
Verdict = Literal[
    "urgent_referral",
    "not_indicated",
    "insufficient_findings",
    "contraindicated",
    "conservative_care_first",
    "tpi_appropriate",
]
VERDICT_ORDER: tuple[Verdict, ...] = get_args(Verdict)


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Coded(Out):
    """A coded statement: the code a program acts on and the plain-language text people read.

    Reasons, cautions and plan issues are coded statements; each adds what it asks of the
    clinician, then the input fields behind it and the knowledge statements it rests on.
    """

    code: str
    text: str


class Reason(Coded):
    """Why: a coded finding in plain language, the input behind it, and its sources."""

    fields: list[str] = Field(default_factory=list)
    statement_ids: list[str] = Field(min_length=1)


class Caution(Coded):
    action: str
    fields: list[str] = Field(default_factory=list)
    statement_ids: list[str] = Field(min_length=1)


class Need(Out):
    """Information the engine needs and will not guess."""

    field: str
    why: str
    blocking: bool = Field(
        default=True, description="true when the verdict cannot move on without it"
    )


class CarePlanItem(Out):
    code: str
    title: str
    text: str
    statement_ids: list[str]


class NextStep(Out):
    stage: int
    name: str
    text: str
    modalities: list[str]
    statement_ids: list[str]


class SteppedCare(Out):
    stage: int = Field(description="highest stage the patient has reached (1 self-care .. 3 TPI)")
    stage_name: str
    tried: list[str]
    next_step: NextStep


class ExpectedCourse(Out):
    phase: Literal["acute", "subacute", "chronic"] | None
    sessions_min: int | None
    sessions_max: int | None
    relief: str
    statement_ids: list[str]


class ConflictNote(Out):
    id: str
    topic: str
    range: str
    positions: list[str]
    statement_ids: list[str]


class Recommendation(Out):
    verdict: Verdict
    headline: str
    redirect: RedirectCode | None = None
    redirects: list[RedirectCode] = Field(default_factory=list)
    reasons: list[Reason]
    cautions: list[Caution]
    needs: list[Need]
    findings: list[Reason] = Field(
        default_factory=list, description="everything else found, whatever the verdict"
    )
    criteria: str
    stepped_care: SteppedCare
    comprehensive_care: list[CarePlanItem]
    pitfalls: list[CarePlanItem]
    expected_course: ExpectedCourse
    evidence_notes: list[CarePlanItem]
    before_procedure: list[CarePlanItem] = Field(
        default_factory=list,
        description="consent, review, sterile technique, dose limits (TPI only)",
    )
    follow_up: list[CarePlanItem] = Field(default_factory=list)
    conflicts: list[ConflictNote]
    knowledge_version: str
    as_of: date
    disclaimer: str

    @property
    def statement_ids(self) -> list[str]:
        """Every statement id this recommendation rests on, sorted."""
        ids: set[str] = set()
        for r in [*self.reasons, *self.findings]:
            ids.update(r.statement_ids)
        for c in self.cautions:
            ids.update(c.statement_ids)
        return sorted(ids)
