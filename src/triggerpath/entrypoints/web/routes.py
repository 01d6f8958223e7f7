"""The clinician web app: server-rendered pages over the services layer.

Every page is one audited call (``Call.run``) with the signed-in user's role; the engine
functions (``assess``, ``plan_procedure``, ``check_dose``, ``evaluate_course``) decide and
the templates only show their results. Routes live under ``/app``; ``/`` sends there.

The pages are grouped by step of the pathway, one module each: ``views_auth`` (sign-in),
``views_patients`` (patients, episodes, timeline), ``views_assessment`` (examination form,
recommendation), ``views_plan`` (planner, live dose check, plan, documents) and
``views_course`` (sessions, procedure note, follow-ups, trend, re-evaluation),
``views_documents`` (referral letters, closing an episode with its summary, FHIR export),
``views_worksheet`` (the editable re-evaluation worksheet); ``views_worklist`` (the home
screen), ``views_records`` (signatures, addenda, void) and ``views_admin`` (users, API keys,
policy, audit).
"""

from __future__ import annotations

from fastapi import APIRouter

from triggerpath.entrypoints.web import (
    views_admin,
    views_assessment,
    views_auth,
    views_course,
    views_documents,
    views_patients,
    views_plan,
    views_records,
    views_worklist,
    views_worksheet,
)

router = APIRouter(include_in_schema=False)
for _module in (
    views_auth,
    views_worklist,
    views_patients,
    views_assessment,
    views_plan,
    views_course,
    views_documents,
    views_worksheet,
    views_records,
    views_admin,
):
    router.include_router(_module.router)
