"""The documents of one stored episode: its banner, procedure notes and summary.

Shared by the web app and the REST API (the FHIR export attaches the same PDFs), so a
document looks the same whichever way it was asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from triggerpath.adapters.documents.build import Document, PatientLine, procedure_note
from triggerpath.adapters.documents.letters import (
    EpisodeSummary,
    SummaryAssessment,
    SummarySession,
    episode_summary,
    letters_for,
)
from triggerpath.adapters.documents.records import procedure_record
from triggerpath.domain.course import CourseReport, check_episode, evaluate_course
from triggerpath.domain.policy import PaperSize, Policy
from triggerpath.knowledge.loader import Knowledge
from triggerpath.services.banner import PatientBanner, banner_of
from triggerpath.services.episodes import Bundle, course_episode
from triggerpath.services.model import Record
from triggerpath.services.payloads import EpisodeData


def patient_line_of(shown: PatientBanner, paper: PaperSize, weight: Any = None) -> PatientLine:
    """A patient banner as documents print it."""
    return PatientLine(
        shown.mrn,
        shown.sex,
        shown.age_years,
        weight,
        name=shown.name,
        born=shown.born,
        flags=tuple(f.name for f in shown.flags),
        flags_source=f"assessment of {shown.flags_as_of.isoformat()}"
        if shown.flags_as_of
        else None,
        paper=paper,
    )


def episode_patient(b: Bundle, kb: Knowledge, policy: Policy, *, on: date) -> PatientLine:
    """The document banner for an episode's patient (weight from the latest assessment)."""
    latest = b.latest_assessment
    weight = b.assessment(latest).input.patient.weight_kg if latest else None
    shown = banner_of(
        b.patient_data, b.assessments, kb, as_of=on, policy=policy.patient_identifiers
    )
    return patient_line_of(shown, policy.paper_size, weight)


def course_report(b: Bundle, kb: Knowledge, policy: Policy, *, on: date) -> CourseReport | None:
    episode = course_episode(b, kb)
    if episode is None or check_episode(episode, kb, as_of=on):
        return None
    return evaluate_course(episode, kb, as_of=on, policy=policy)


def summary_of(b: Bundle, kb: Knowledge) -> EpisodeSummary:
    """What the stored episode holds, for its summary."""
    ed = EpisodeData.model_validate(b.episode.current.data)
    assessments = [
        SummaryAssessment(
            d.as_of, d.result.verdict, d.result.headline, tuple(d.result.statement_ids), a.signed
        )
        for a in b.assessments
        for d in [b.assessment(a)]
    ]
    referrals: list[str] = []
    if b.latest_assessment is not None:
        result = b.assessment(b.latest_assessment).result
        referrals = [f"{x.subject} → {x.service}" for x in letters_for(result, kb)]
    return EpisodeSummary(
        regions=list(ed.regions),
        onset=ed.onset,
        opened=b.episode.created_at.date(),
        closed_on=ed.closed_on,
        status=ed.status,
        assessments=assessments,
        sessions=[_session_line(b, s, kb) for s in b.sessions],
        referrals=referrals,
        note=ed.note,
    )


def _session_line(b: Bundle, record: Record, kb: Knowledge) -> SummarySession:
    s = b.session_data(record)
    muscles = dict.fromkeys(
        f"{kb.muscles[x.muscle].name if x.muscle in kb.muscles else x.muscle} ({x.side})"
        for x in s.sites
    )
    dose = ", ".join(f"{agent} {mg:g} mg" for agent, mg in s.total_mg_by_agent.items())
    return SummarySession(
        performed_at=s.performed_at.isoformat(timespec="minutes"),
        muscles=", ".join(muscles),
        dose=dose or "no local anesthetic",
        complications=", ".join(c.replace("_", " ") for c in s.complications) or "not recorded",
        safety_event=s.dose_exceeded,
    )


@dataclass(frozen=True)
class SessionNote:
    session: Record
    document: Document


def session_notes(b: Bundle, kb: Knowledge, patient: PatientLine) -> list[SessionNote]:
    """The procedure note of every session (indication: the latest assessment)."""
    ed = EpisodeData.model_validate(b.episode.current.data)
    latest = b.latest_assessment
    indication = b.assessment(latest).result if latest else None
    return [
        SessionNote(
            s,
            procedure_note(
                procedure_record(b.session_data(s), ed.regions), kb, patient, indication=indication
            ),
        )
        for s in b.sessions
    ]


def episode_summary_document(b: Bundle, kb: Knowledge, policy: Policy, *, on: date) -> Document:
    return episode_summary(
        summary_of(b, kb),
        course_report(b, kb, policy, on=on),
        kb,
        episode_patient(b, kb, policy, on=on),
        on=on,
    )
