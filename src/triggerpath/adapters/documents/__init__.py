"""Clinical documents (HTML and PDF): consent, procedure note, after-care, exercises, re-evaluation,
referral letters and the episode summary (letters.py). Every document shows the patient banner
(name, date of birth, MRN) and is laid out on the clinic policy's paper (Letter or A4).

Each builder takes the engine's own results (a :class:`~triggerpath.domain.planning.ProcedurePlan`,
a :class:`~triggerpath.domain.course.CourseReport`, a recorded procedure) and the knowledge base,
and returns a :class:`Document` whose HTML is rendered from Jinja2 templates in
``templates/``; :func:`render_pdf` turns it into a PDF with WeasyPrint. Nothing here decides:
the documents only lay out what the engine and the knowledge base say.

- Patient documents (consent, after-care, home exercises) use plain language; the statement
  ids behind them are listed at the foot of the page for the clinician.
- Clinician documents (procedure note, re-evaluation summary) carry the statement ids on every
  clinical line.
"""

from __future__ import annotations

from triggerpath.adapters.documents.build import (
    Document,
    PatientLine,
    ProcedureRecord,
    ProcedureSite,
    aftercare_sheet,
    consent_form,
    cpt_for,
    exercise_program,
    procedure_note,
    reevaluation_summary,
    render_pdf,
)
from triggerpath.adapters.documents.episode import (
    SessionNote,
    course_report,
    episode_patient,
    episode_summary_document,
    patient_line_of,
    session_notes,
    summary_of,
)
from triggerpath.adapters.documents.letters import (
    EpisodeSummary,
    Letter,
    SummaryAssessment,
    SummarySession,
    episode_summary,
    letters_for,
    referral_letters,
)
from triggerpath.adapters.documents.records import procedure_record

__all__ = [
    "Document",
    "EpisodeSummary",
    "Letter",
    "PatientLine",
    "ProcedureRecord",
    "ProcedureSite",
    "SessionNote",
    "SummaryAssessment",
    "SummarySession",
    "aftercare_sheet",
    "consent_form",
    "course_report",
    "cpt_for",
    "episode_patient",
    "episode_summary",
    "episode_summary_document",
    "exercise_program",
    "letters_for",
    "patient_line_of",
    "procedure_note",
    "procedure_record",
    "reevaluation_summary",
    "referral_letters",
    "render_pdf",
    "session_notes",
    "summary_of",
]
