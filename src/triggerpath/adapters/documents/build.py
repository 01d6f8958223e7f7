"""Builders for each document: gather what the engine said, render the template."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any, Literal

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from triggerpath.adapters.documents.figures import exercise_figure
from triggerpath.domain.course import CourseReport
from triggerpath.domain.planning import ProcedurePlan
from triggerpath.domain.recommendation import Recommendation
from triggerpath.knowledge.coding import load_coding
from triggerpath.knowledge.loader import Knowledge
from triggerpath.knowledge.review import item_ids, items_for, review_of
from triggerpath.knowledge.schema import Exercise

Audience = Literal["patient", "clinician"]
#: the exercise that comes first on every sheet (the first 24-48 hours after injection)
FIRST_EXERCISE = "gentle_rom_after_injection"
KIND_TITLES = {
    "range_of_motion": "Gentle movement",
    "stretch": "Stretches",
    "strengthening": "Strengthening",
    "posture": "Posture",
    "self_massage": "Self-massage",
}
#: Plain-language risk per injection hazard, for the consent form (the clinician's wording is
#: the hazard's ``risk`` in anatomy.yaml; these restate it for patients).
PLAIN_HAZARD_RISK = {
    "pleura": (
        "Collapsed lung (pneumothorax): because the injection is over the chest wall, the needle "
        "could rarely pass between the ribs and let air leak around the lung. Signs are chest pain "
        "that is worse on breathing in, or shortness of breath, sometimes hours later; it needs "
        "urgent care."
    ),
    "cervical_nerve_roots": (
        "Irritation of a nerve in the neck: a brief shooting pain, numbness or weakness in the arm."
    ),
    "vertebral_artery": (
        "Very rarely, numbing medicine entering an artery in the neck, which can cause a seizure."
    ),
    "spinal_accessory_nerve": "Irritation of the nerve that moves the shoulder-shrugging muscle.",
    "dorsal_scapular_neurovascular": (
        "Irritation of a small nerve or bleeding from a small artery near the shoulder blade."
    ),
    "spinal_canal": (
        "Very rarely, the needle or medicine reaching the spinal canal: sudden numbness or "
        "weakness of the legs."
    ),
    "kidney": "Very rarely, injury to the kidney: pain in the side or blood in the urine.",
    "retroperitoneum": (
        "Very rarely, bleeding deep in the back or a numb or weak thigh for some hours."
    ),
    "sciatic_nerve": (
        "The leg may feel numb or weak for a few hours if the medicine reaches the sciatic nerve; "
        "do not drive until it has worn off."
    ),
}


PaperSize = Literal["letter", "a4"]
#: CSS ``@page size`` per clinic policy ``paper_size`` (Letter 612 x 792 pt, A4 595 x 842 pt).
PAGE_SIZES: dict[str, str] = {"letter": "letter", "a4": "A4"}


@dataclass(frozen=True, slots=True)
class PatientLine:
    """Who the document is for: the banner of every page (name, date of birth, MRN).

    ``name`` is the display name (``FAMILY, Given``; "name not recorded" for a patient
    registered before identity was kept), ``born`` the date of birth as shown.
    """

    mrn: str
    sex: str
    age_years: int | None = None
    weight_kg: Decimal | float | None = None
    name: str = "name not recorded"
    born: str = "not recorded"
    flags: tuple[str, ...] = ()
    #: the flags' source ("assessment of 2026-11-21"), or None when never assessed
    flags_source: str | None = None
    paper: PaperSize = "letter"


@dataclass(frozen=True, slots=True)
class ProcedureSite:
    muscle: str
    side: str
    agent: str
    percent: float | None
    volume_ml: float
    mg: float | None


@dataclass(frozen=True, slots=True)
class ProcedureRecord:
    """A procedure as performed (from a session record).

    Every field is what was recorded, ``None`` (or empty) when nothing was: the note then
    says "not recorded", never a default. ``complications`` is empty when none were
    recorded and ``["none"]`` when "no complications" was recorded.
    """

    performed_at: datetime
    operator: str
    sites: Sequence[ProcedureSite]
    complications: Sequence[str] = ()
    consent: bool | None = None
    aspiration: str | None = None
    twitch: str | None = None
    guidance: str | None = None
    needle: str | None = None  # older records: the needle as typed
    needle_gauge: int | None = None
    needle_length_mm: float | None = None
    time_out: bool | None = None
    lot_numbers: str | None = None
    vitals: str | None = None
    observation_minutes: float | None = None
    handouts: Sequence[str] = ()
    deviations: Sequence[str] = ()
    dose_headline: str | None = None  # the dose engine on the session and its 24-h ledger
    dose_exceeded: bool = False
    exceedance_reason: str | None = None
    regions: Sequence[str] = ()
    note: str | None = None
    total_mg_by_agent: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Document:
    kind: str
    title: str
    audience: Audience
    html: str
    statement_ids: tuple[str, ...]
    #: tells apart documents of one kind for one record (a referral letter's redirect)
    key: str = ""

    @property
    def filename_stem(self) -> str:
        stem = self.kind.replace("_", "-")
        return f"{stem}-{self.key.replace('_', '-').replace('.', '-')}" if self.key else stem


@cache
def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("triggerpath.adapters.documents", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ids"] = lambda ids: "[" + ", ".join(ids) + "]" if ids else ""
    env.filters["num"] = _num
    env.filters["side"] = _side
    env.filters["css"] = _css_string
    return env


def _css_string(value: object) -> Markup:
    """Text for a CSS string in the page's ``<style>`` (the running header and footer): CSS
    escapes, not HTML ones (a ``<style>`` element is raw text, ``&#39;`` would print)."""
    text = " ".join(str(value).split())
    escaped = "".join(f"\\{ord(c):X} " if c in '\\"<>&' else c for c in text)
    return Markup(escaped)


def _num(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, Decimal | float | int):
        text = format(Decimal(str(value)).normalize(), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def _side(side: str) -> str:
    return {"left": "left", "right": "right", "bilateral": "both sides"}.get(side, side)


def _ids(*groups: Iterable[str]) -> tuple[str, ...]:
    out: set[str] = set()
    for g in groups:
        out.update(g)
    return tuple(sorted(out))


def _render(template: str, **context: Any) -> str:
    return _env().get_template(template).render(**context)


def _base(
    kb: Knowledge, patient: PatientLine, on: date, title: str, items: Iterable[str] | None = None
) -> dict[str, Any]:
    """What every template shows; ``items`` are the knowledge items the document relies on
    (their clinical review status is stated in one line while any awaits review)."""
    return {
        "kb_version": kb.version,
        "patient": patient,
        "page_size": PAGE_SIZES[patient.paper],
        "on": on,
        "title": title,
        "statements": kb.statements,
        "review_notice": review_of(kb).notice(items),
    }


def _plan_items(plan: ProcedurePlan, kb: Knowledge) -> list[str]:
    agents = [s.agent for s in plan.injectate.solutions] if plan.injectate else []
    return items_for(kb, muscles=[t.muscle for t in plan.targets], agents=agents)


def _agent_name(kb: Knowledge, agent: str) -> str:
    la = kb.injectates.agent(agent)
    if la is not None:
        return la.name
    return agent.replace("_", " ").capitalize()


def cpt_for(sites: Iterable[tuple[str, str]], kb: Knowledge) -> tuple[str, str, int]:
    """CPT code, its display and the muscle count: 20552 for 1-2 muscles, 20553 for 3 or more.

    Muscles are counted as CPT counts them: each muscle and side once, a bilateral muscle twice
    (as the FHIR Procedure writer does). Source: AMA CPT 2025, 20552-20553 (valuesets.yaml).
    """
    count = sum(2 if side == "bilateral" else 1 for _, side in dict.fromkeys(sites))
    code = "20552" if count <= 2 else "20553"
    display = next(
        (c.display for _, c in kb.valuesets.codes("tpi_procedure") if c.code == code), code
    )
    return code, display, count


# --------------------------------------------------------------------------- consent
def consent_form(plan: ProcedurePlan, kb: Knowledge, patient: PatientLine, *, on: date) -> Document:
    """Informed consent (S002.17): benefits, risks (pneumothorax over the chest), alternatives,
    expected outcomes (S000.30, S000.19, S000.20), in plain language."""
    hazard_ids: list[str] = []
    for card in plan.targets:
        for hz in card.hazards:
            if hz.id not in hazard_ids and hz.id in PLAIN_HAZARD_RISK:
                hazard_ids.append(hz.id)
    thoracic = [c.name for c in plan.targets if any(h.id == "pleura" for h in c.hazards)]
    ec = plan.expected_course
    title = "Consent for trigger point injection"
    html = _render(
        "consent.html",
        **_base(kb, patient, on, title, _plan_items(plan, kb)),
        plan=plan,
        agents=_agents_text(plan, kb),
        hazard_risks=[PLAIN_HAZARD_RISK[h] for h in hazard_ids],
        thoracic=thoracic,
        expected=ec,
    )
    ids = _ids(
        ["S002.17", "S000.30", "S000.29", "S002.30", "S001.10", "S000.25", "S000.19"],
        ec.statement_ids,
        *(a.statement_ids for a in plan.alternatives),
    )
    return Document("consent", title, "patient", html, ids)


def _agents_text(plan: ProcedurePlan, kb: Knowledge) -> list[str]:
    lines: list[str] = []
    if plan.injectate is not None:
        for s in plan.injectate.solutions:
            epi = " with adrenaline (epinephrine)" if s.epinephrine else ""
            lines.append(f"{s.name} {_num(s.percent)}%{epi} (a numbing medicine)")
        if plan.injectate.saline_ml:
            lines.append("sterile salt water (saline) to dilute it")
    if plan.steroid is not None and plan.steroid.status == "included" and plan.steroid.name:
        lines.append(f"{plan.steroid.name} {_num(plan.steroid.mg)} mg (a steroid)")
    return lines


# --------------------------------------------------------------------------- after-care
def aftercare_sheet(
    plan: ProcedurePlan, kb: Knowledge, patient: PatientLine, *, on: date
) -> Document:
    """After-care (S002.26, S002.30, S002.31, S000.29): the first 24-48 hours, ice 15-20
    minutes, pain relief, warning signs and when to call, in plain language."""
    hazards = {h.id for c in plan.targets for h in c.hazards}
    title = "After your trigger point injection"
    html = _render(
        "aftercare.html",
        **_base(kb, patient, on, title, _plan_items(plan, kb)),
        plan=plan,
        chest="pleura" in hazards,
        leg="sciatic_nerve" in hazards,
        kidney="kidney" in hazards,
        reassessment=plan.reassessment,
    )
    ids = _ids(
        ["S002.26", "S002.30", "S002.31", "S000.29", "S000.25"],
        ["S000.30"] if "pleura" in hazards else [],
        plan.reassessment.statement_ids if plan.reassessment else [],
    )
    return Document("aftercare", title, "patient", html, ids)


# --------------------------------------------------------------------------- exercises
def exercises_for(muscles: Sequence[str], kb: Knowledge) -> list[Exercise]:
    """The treated muscles' exercises, each once, gentle movement after injection first."""
    ids: list[str] = []
    for m in muscles:
        muscle = kb.muscles.get(m)
        if muscle is not None:
            ids.extend(muscle.exercises)
    ordered = list(dict.fromkeys(ids))
    if FIRST_EXERCISE in ordered:
        ordered.remove(FIRST_EXERCISE)
        ordered.insert(0, FIRST_EXERCISE)
    return [kb.exercises[e] for e in ordered if e in kb.exercises]


def exercise_program(
    targets: Sequence[tuple[str, str]], kb: Knowledge, patient: PatientLine, *, on: date
) -> Document:
    """A home exercise program for the treated muscles: stretches and strengthening from the
    knowledge base (S002.28, S002.13, S000.26), each with a simple drawing."""
    muscles = list(dict.fromkeys(m for m, _ in targets))
    exercises = exercises_for(muscles, kb)
    groups: dict[str, list[dict[str, Any]]] = {}
    for ex in exercises:
        groups.setdefault(ex.kind, []).append({"ex": ex, "figure": exercise_figure(ex)})
    ordered = [(KIND_TITLES[k], groups[k]) for k in KIND_TITLES if k in groups]
    title = "Your home exercise program"
    html = _render(
        "exercises.html",
        **_base(kb, patient, on, title, items_for(kb, muscles=muscles)),
        targets=[(kb.muscles[m].name, s) for m, s in targets if m in kb.muscles],
        groups=ordered,
    )
    ids = _ids(["S002.28", "S002.13", "S000.25"], *(e.statement_ids for e in exercises))
    return Document("exercises", title, "patient", html, ids)


# --------------------------------------------------------------------------- procedure note
def procedure_note(
    record: ProcedureRecord,
    kb: Knowledge,
    patient: PatientLine,
    *,
    plan: ProcedurePlan | None = None,
    indication: Recommendation | None = None,
) -> Document:
    """The procedure note, from the session's structured fields only: what was recorded is
    stated, the rest says "not recorded". Codes: ICD-10-CM diagnoses (procedure_coding.yaml),
    CPT 20552/20553 by muscle count and 76942 when ultrasound guidance is recorded."""
    pairs = [(s.muscle, s.side) for s in record.sites if s.muscle in kb.muscles]
    code, display, count = cpt_for(pairs, kb)
    coding = load_coding()
    totals: dict[str, float] = {}
    for s in record.sites:
        if s.mg is not None:
            totals[s.agent] = round(totals.get(s.agent, 0.0) + s.mg, 3)
    title = "Trigger point injection: procedure note"
    agents = [s.agent for s in record.sites]
    html = _render(
        "procedure_note.html",
        **_base(
            kb,
            patient,
            record.performed_at.date(),
            title,
            items_for(kb, muscles=[m for m, _ in pairs], agents=agents),
        ),
        record=record,
        plan=plan,
        indication=indication,
        muscle_names={m: kb.muscles[m].name for m, _ in pairs},
        agent_name=lambda a: _agent_name(kb, a),
        totals=totals,
        cpt_code=code,
        cpt_display=display,
        cpt_count=count,
        guidance_code=coding.guidance_code(record.guidance),
        diagnoses=coding.diagnoses_for(record.regions),
        coding=coding,
    )
    ids = _ids(
        ["S002.17", "S003.07", "S002.20", "S000.28", "S000.29", "S002.26"],
        indication.statement_ids if indication else [],
    )
    return Document("procedure_note", title, "clinician", html, ids)


# --------------------------------------------------------------------------- re-evaluation
def _course_items(kb: Knowledge) -> list[str]:
    return [i for i in item_ids(kb) if i.startswith(("rule.course.", "instrument."))]


def reevaluation_summary(
    report: CourseReport, kb: Knowledge, patient: PatientLine, *, on: date
) -> Document:
    """The course and, when TPIs fail, the re-evaluation worksheet (S000.31-33, S004.01-09)."""
    title = "Course review and re-evaluation"
    html = _render(
        "reevaluation.html",
        **_base(kb, patient, on, title, _course_items(kb)),
        report=report,
        ws=report.reevaluation,
    )
    ids = _ids(
        report.statement_ids, report.reevaluation.statement_ids if report.reevaluation else []
    )
    return Document("reevaluation", title, "clinician", html, ids)


# --------------------------------------------------------------------------- pdf
def render_pdf(doc: Document) -> bytes:
    """The document as PDF (WeasyPrint; the paper of the clinic policy and the print
    stylesheet of the templates)."""
    from weasyprint import HTML  # type: ignore[import-untyped]

    pdf: bytes = HTML(string=doc.html, base_url=None).write_pdf()
    return pdf
