"""The safety kernel: the one place that decides whether a clinical write is allowed.

Every write path (REST API, web forms, CLI, CDS order hooks, imports) reaches the store
through :mod:`triggerpath.services.clinical` and :mod:`triggerpath.services.records`,
and those call the ``admit_*`` functions here before anything is written. Each one
gathers the facts its rules need (the patient's recorded sessions, the assessment a plan
is for, the clinic policy), runs the pure rules of :mod:`triggerpath.domain.integrity`,
the planner and the dose engine, and either returns the content to store or raises one
:class:`~triggerpath.errors.WriteRefused` listing every problem (field, rule id, reason,
statement ids). A refusal happens inside the audited call before any write, so nothing is
stored and the audit event's outcome is ``invalid``.

Public interface (for every entry point)::

    ctx = kernel.context(uow, actor, kb, now)     # store + policy + bounds + clock, once
    kernel.admit_patient(ctx, PatientData)
    kernel.admit_episode(ctx, patient_record, EpisodeData)
    kernel.admit_assessment(ctx, AssessmentIn)
    plan_data = kernel.admit_plan(ctx, assessment_record, PlanIn)
    session_data = kernel.admit_session(ctx, episode_record, SessionIn, replacing=None)
    kernel.admit_outcome(ctx, episode_record, OutcomeData)
    kernel.admit_retraction(actor, record)               # author/signer or a clinician
    kernel.admit_signature(actor, record)                # own record; not a stale plan
    kernel.admit_addendum(actor, record)                 # signed records: signer or clinician
    kernel.admit_attestation(actor, record)              # only the named performer
"""

from triggerpath.services.kernel._context import (
    Context,
    admit_text,
    context,
    current_policy,
    refuse,
)
from triggerpath.services.kernel._plans import admit_plan
from triggerpath.services.kernel._records import (
    admit_assessment,
    admit_attestation,
    admit_episode,
    admit_outcome,
    admit_patient,
)
from triggerpath.services.kernel._sessions import admit_session
from triggerpath.services.kernel._signatures import (
    admit_addendum,
    admit_retraction,
    admit_signature,
)

__all__ = [
    "Context",
    "admit_addendum",
    "admit_assessment",
    "admit_attestation",
    "admit_episode",
    "admit_outcome",
    "admit_patient",
    "admit_plan",
    "admit_retraction",
    "admit_session",
    "admit_signature",
    "admit_text",
    "context",
    "current_policy",
    "refuse",
]
