"""Engine endpoints on posted data: nothing is stored, every call is audited.

Each engine function is one small route here: parse the body (FastAPI validates it
against the engine's own input model), call the pure function with the clinic policy
and today's date, return its result model.
"""

from collections.abc import Callable
from datetime import date
from typing import Annotated, TypeVar

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from triggerpath.domain.assessment import Assessment
from triggerpath.domain.course import CourseReport, Episode, check_episode, evaluate_course
from triggerpath.domain.dosing import DoseCheck, DoseRequest, check_dose
from triggerpath.domain.engine import assess as run_assess
from triggerpath.domain.planning import PlanRequest, ProcedurePlan, plan_from_request
from triggerpath.domain.policy import Policy
from triggerpath.domain.recommendation import Recommendation
from triggerpath.domain.scoring import Score, score
from triggerpath.domain.validation import check_ids
from triggerpath.entrypoints.api.bounded_body import BoundedJSONRoute
from triggerpath.entrypoints.api.deps import State, action
from triggerpath.entrypoints.api.problems import PROBLEM_RESPONSES
from triggerpath.errors import FieldProblem, InvalidInput
from triggerpath.knowledge.instruments import InstrumentId
from triggerpath.services import clinical
from triggerpath.services.audit import AuditNote, Call
from triggerpath.services.uow import UnitOfWork

router = APIRouter(
    prefix="/api/v1", tags=["compute"], responses=PROBLEM_RESPONSES, route_class=BoundedJSONRoute
)

T = TypeVar("T")
AsOf = Annotated[
    date | None, Query(description="the date to compute for (default today; never guessed)")
]


def _under_policy(
    call: Call,
    compute: Callable[[Policy], T],
    check: Callable[[], list[FieldProblem]] = list,
) -> T:
    """One audited engine call: refuse the body's problems (422), else compute under the policy.

    Every compute route has this shape; the check and the policy read run inside the audited
    call, so a refused body leaves its audit event like any other failure.
    """

    def run(uow: UnitOfWork, note: AuditNote) -> T:
        problems = check()
        if problems:
            raise InvalidInput(problems)
        _, policy = clinical.current_policy(uow)
        return compute(policy)

    return call.run(run)


@router.post("/assess", response_model=Recommendation)
def assess(
    body: Assessment,
    state: State,
    call: Annotated[Call, action("compute.assess")],
    as_of: AsOf = None,
) -> Recommendation:
    """Assess posted findings: verdict, reasons with statement ids, cautions, plan items."""
    return _under_policy(
        call,
        lambda policy: run_assess(body, state.kb, as_of=as_of or state.today(), policy=policy),
        lambda: check_ids(body, state.kb),
    )


@router.post("/dose", response_model=DoseCheck)
def dose(
    body: DoseRequest, state: State, call: Annotated[Call, action("compute.dose")]
) -> DoseCheck:
    """Check local anesthetic totals against every limit (ok, caution or exceeds)."""
    return _under_policy(call, lambda policy: check_dose(body, state.kb, policy=policy))


@router.post("/plan", response_model=ProcedurePlan)
def plan(
    body: PlanRequest,
    state: State,
    call: Annotated[Call, action("compute.plan")],
    as_of: AsOf = None,
) -> ProcedurePlan:
    """Plan TPIs per target: technique, totals with the dose check, checklist, follow-up."""
    return _under_policy(
        call,
        lambda policy: plan_from_request(
            body, state.kb, as_of=as_of or state.today(), policy=policy
        ),
        lambda: check_ids(body.assessment, state.kb, prefix="assessment"),
    )


@router.post("/course", response_model=CourseReport)
def course(
    body: Episode,
    state: State,
    call: Annotated[Call, action("compute.course")],
    as_of: AsOf = None,
) -> CourseReport:
    """Follow a course of TPIs: response, session limits, reassessment, re-evaluation."""
    when = as_of or state.today()
    return _under_policy(
        call,
        lambda policy: evaluate_course(body, state.kb, as_of=when, policy=policy),
        lambda: check_episode(body, state.kb, as_of=when),
    )


class Answers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answers: list[int | None] = Field(
        min_length=1, max_length=100, description="item answers in order; null = missing"
    )


@router.post("/score/{instrument}", response_model=Score)
def score_instrument(
    instrument: InstrumentId,
    body: Answers,
    state: State,
    call: Annotated[Call, action("compute.score")],
) -> Score:
    """Score an outcome questionnaire by its published rules."""
    return call.run(lambda uow, note: score(instrument, body.answers, state.kb))
