"""Documents as HTML and PDF: rendered with WeasyPrint, turned into PNG pages with poppler's
``pdftoppm`` and read back with ``pdftotext``. Needs poppler-utils (scripts/test installs it);
without it these tests fail rather than skip."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from triggerpath.adapters import documents as docs
from triggerpath.adapters.documents.build import exercises_for
from triggerpath.domain.course import evaluate_course, parse_episode
from triggerpath.domain.engine import assess
from triggerpath.domain.planning import (
    HazardNote,
    PlanRequest,
    ProcedurePlan,
    parse_plan_request,
    plan_from_request,
)
from triggerpath.knowledge import Knowledge

from ..conftest import AS_OF, ROOT

PLANS = ROOT / "examples" / "plans"
COURSES = ROOT / "examples" / "courses"
SHOTS = ROOT / "test-artifacts" / "screenshots"
PATIENT = docs.PatientLine("DOC-1", "female", 46, 68, name="DOCUMENTA, Paula Jo", born="1980-03-02")
STATEMENT_ID = re.compile(r"S\d{3}\.\d{2}")


def request_of(name: str, kb: Knowledge) -> PlanRequest:
    return parse_plan_request(json.loads((PLANS / f"{name}.json").read_text()), kb)


def plan_of(name: str, kb: Knowledge) -> ProcedurePlan:
    return plan_from_request(request_of(name, kb), kb, as_of=AS_OF)


def pdf_pages(doc: docs.Document, tmp_path: Path) -> tuple[list[Path], str]:
    """Render the PDF, convert it to PNG pages (pdftoppm) and extract its text (pdftotext)."""
    for tool in ("pdftoppm", "pdftotext"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: install poppler-utils (scripts/test does)")
    pdf = tmp_path / f"{doc.kind}.pdf"
    pdf.write_bytes(docs.render_pdf(doc))
    assert pdf.read_bytes()[:5] == b"%PDF-"
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(pdf), str(tmp_path / doc.kind)], check=True)
    pages = sorted(tmp_path.glob(f"{doc.kind}-*.png"))
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(pages[0], SHOTS / f"pdf-{doc.kind}-page1.png")
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    return pages, " ".join(text.split())


def test_consent_names_pneumothorax_for_a_thoracic_target(kb: Knowledge, tmp_path: Path) -> None:
    """Rhomboid major lies over the chest wall (hazard 'pleura', S000.30): the consent says so."""
    doc = docs.consent_form(plan_of("rhomboids_upper_back_pleura", kb), kb, PATIENT, on=AS_OF)
    pages, text = pdf_pages(doc, tmp_path)
    assert pages and all(p.stat().st_size > 2000 for p in pages)
    for expected in (
        "Consent for trigger point injection",
        "How it may help",
        "What to expect",
        "Risks",
        "pneumothorax",
        "Injections over the chest wall",
        "Other choices",
        "Dry needling",
        "Patient signature",
    ):
        assert expected in text, expected
    assert "S002.17" in doc.statement_ids and "S000.30" in doc.statement_ids


def test_consent_without_a_thoracic_target_has_no_chest_wall_warning(kb: Knowledge) -> None:
    plan = plan_of("ql_low_back_ok", kb)
    plan = plan.model_copy(
        update={"targets": [t for t in plan.targets if t.muscle != "quadratus_lumborum"]}
    )
    assert [t.muscle for t in plan.targets] == ["gluteus_medius"]  # hazards: intravascular only
    html = docs.consent_form(plan, kb, PATIENT, on=AS_OF).html
    assert "Injections over the chest wall" not in html
    assert "pneumothorax" not in html


def test_aftercare_sheet(kb: Knowledge, tmp_path: Path) -> None:
    """Activity 24-48 h, ice 15-20 min (S002.26), soreness (S002.30), infection (S002.31),
    anesthetic toxicity signs (S000.29), when to call, the 2-4 week review (S003.12)."""
    plan = plan_of("rhomboids_upper_back_pleura", kb)
    doc = docs.aftercare_sheet(plan, kb, PATIENT, on=AS_OF)
    _, text = pdf_pages(doc, tmp_path)
    for expected in (
        "24–48 hours",
        "15–20 minutes",
        "pain reliever",
        "redness, swelling or warmth",
        "ringing in the ears",
        "Chest pain",
        "Call the clinic",
        "emergency",
        plan.reassessment.earliest.isoformat() if plan.reassessment else "",
    ):
        assert expected in text, expected
    assert {"S002.26", "S002.30", "S002.31", "S000.29"} <= set(doc.statement_ids)


def test_exercise_program_is_tailored_to_the_treated_muscles(kb: Knowledge, tmp_path: Path) -> None:
    ql = docs.exercise_program([("quadratus_lumborum", "right")], kb, PATIENT, on=AS_OF)
    trap = docs.exercise_program([("upper_trapezius", "bilateral")], kb, PATIENT, on=AS_OF)
    ql_names = [e.name for e in exercises_for(["quadratus_lumborum"], kb)]
    trap_names = [e.name for e in exercises_for(["upper_trapezius"], kb)]
    assert ql_names[0] == "Gentle movement after the injection"  # first 24-48 h (S002.26)
    assert "Standing side-bend stretch for the quadratus lumborum" in ql_names
    assert "Upper trapezius stretch" in trap_names
    assert "Upper trapezius stretch" not in ql_names
    assert ql.html.count('class="figure"') == len(ql_names)  # one drawing per exercise
    _, text = pdf_pages(ql, tmp_path)
    assert "Standing side-bend stretch for the quadratus lumborum" in text
    assert "How much:" in text
    assert "Upper trapezius stretch" in trap.html


def test_cpt_code_by_number_of_muscles(kb: Knowledge) -> None:
    """AMA CPT 2025: 20552 for trigger points in 1 or 2 muscles, 20553 for 3 or more; a muscle
    injected on both sides counts as two (as the FHIR Procedure writer counts)."""
    assert docs.cpt_for([("quadratus_lumborum", "right")], kb)[:2] == (
        "20552",
        "Injection(s); single or multiple trigger point(s), 1 or 2 muscle(s)",
    )
    two = [("quadratus_lumborum", "right"), ("gluteus_medius", "right")]
    assert docs.cpt_for(two, kb)[0] == "20552"
    assert docs.cpt_for([*two, ("piriformis", "right")], kb)[0] == "20553"
    assert docs.cpt_for([("upper_trapezius", "bilateral")], kb)[0] == "20552"
    assert docs.cpt_for([("upper_trapezius", "bilateral"), ("rhomboid_major", "left")], kb)[0] == (
        "20553"
    )
    # the same muscle and side twice (two solutions into one muscle) counts once
    assert docs.cpt_for([("piriformis", "left"), ("piriformis", "left")], kb)[2] == 1


def _note_record(**kw: Any) -> docs.ProcedureRecord:
    base: dict[str, Any] = {
        "performed_at": datetime(2026, 11, 21, 10, 30, tzinfo=UTC),
        "operator": "dr.test",
        "sites": [
            docs.ProcedureSite("quadratus_lumborum", "right", "lidocaine", 1, 1.5, 15),
            docs.ProcedureSite("quadratus_lumborum", "right", "saline", None, 1.5, None),
            docs.ProcedureSite("gluteus_medius", "right", "lidocaine", 1, 1.0, 10),
            docs.ProcedureSite("gluteus_medius", "right", "saline", None, 1.0, None),
        ],
    }
    return docs.ProcedureRecord(**{**base, **kw})


def test_procedure_note(kb: Knowledge, tmp_path: Path) -> None:
    plan = plan_of("ql_low_back_ok", kb)
    record = _note_record(
        complications=["none"],
        consent=True,
        time_out=True,
        aspiration="negative before every injection",
        twitch="elicited",
        guidance="ultrasound",
        needle_gauge=28,
        needle_length_mm=90,
        lot_numbers="LID-2291A",
        vitals="BP 128/82, HR 74",
        observation_minutes=20,
        handouts=["after-care sheet"],
        regions=["low_back"],
        note="Tolerated well.",
    )
    indication = assess(request_of("ql_low_back_ok", kb).assessment, kb, as_of=AS_OF)
    doc = docs.procedure_note(record, kb, PATIENT, plan=plan, indication=indication)
    _, text = pdf_pages(doc, tmp_path)
    for expected in (
        "CPT 20552",
        "CPT 76942",  # ultrasound guidance recorded (AMA CPT 2025)
        "M79.18 Myalgia, other site",  # ICD-10-CM FY2025 (CDC NCHS)
        "M62.830 Muscle spasm of back",
        "Quadratus lumborum",
        "Gluteus medius",
        "28 G, 90 mm",
        "negative before every injection",
        "Lidocaine 25 mg",  # 15 + 10 mg (1% = 10 mg/mL)
        "None (recorded)",
        "obtained",
        "LID-2291A",
        "BP 128/82, HR 74",
        "20 minutes",
        "after-care sheet",
    ):
        assert expected in text, expected
    assert "not recorded" not in text.replace('"not recorded" means', "")
    # a clinician document: every listed clinical statement carries its statement ids
    items = re.findall(r"<li>(.*?)</li>", doc.html, flags=re.S)
    assert items and all(STATEMENT_ID.search(i) for i in items), [
        i for i in items if not STATEMENT_ID.search(i)
    ]


def test_procedure_note_states_only_what_was_recorded(kb: Knowledge) -> None:
    """Nothing recorded beyond the sites: every other field says "not recorded", and none of
    the old default sentences (aspiration negative, observed, handouts given, none observed)
    appears; no 76942 without recorded ultrasound guidance; the neck gets no back code."""
    doc = docs.procedure_note(_note_record(regions=["neck"]), kb, PATIENT)
    html = doc.html
    for absent in (
        "negative before",
        "Observed for signs",
        "sheet and home exercise program given",
        "None observed",
        "obtained",
        "76942",
        "M62.830",
        "Myofascial trigger points in the muscles below",
    ):
        assert absent not in html, absent
    cells = re.findall(r'<th scope="row">([^<]+)</th><td>(.*?)</td>', html, flags=re.S)
    unrecorded = {k for k, v in cells if v.startswith("<em>not recorded</em>")}
    assert {
        "Informed consent",
        "Time-out (patient, side, site)",
        "Vital signs",
        "Needle",
        "Guidance",
        "Aspiration",
        "Local twitch response",
        "Observation",
        "Handouts given",
    } <= unrecorded
    assert "M79.18" in html
    complications = html.split("<h2>Complications</h2>", 1)[1].split("<h2>", 1)[0]
    assert "<em>not recorded</em>" in complications


def test_procedure_note_keeps_the_needle_text_whole(kb: Knowledge) -> None:
    """Free text is never cut: a needle typed with ';' and a long note survive whole, also
    through the session note's technique line."""
    from triggerpath.services.episodes import parse_technique, technique_line

    needle = "27 G; 38 mm spinal needle; changed after first pass"
    note = "x" * 1500 + " end"
    line = technique_line({"needle": needle, "guidance": "ultrasound"})
    details, rest = parse_technique(line + "\n" + note)
    assert details["needle"] == needle and rest == note
    doc = docs.procedure_note(_note_record(needle=needle, note=note), kb, PATIENT)
    assert needle in doc.html and note in doc.html


def _hazard_of(kb: Knowledge, hazard_id: str) -> HazardNote:
    h = kb.hazards[hazard_id]
    return HazardNote(
        id=h.id,
        name=h.name,
        risk=h.risk,
        precaution=h.precaution,
        statement_ids=list(h.statement_ids),
        references=list(h.references),
    )


@pytest.mark.parametrize(
    ("muscle", "present", "absent"),
    [
        ("gluteus_medius", [], ["lung", "urine", "leg may feel numb"]),
        ("quadratus_lumborum", ["lung", "urine"], ["leg may feel numb"]),
        ("piriformis", ["leg may feel numb"], ["lung", "urine"]),
    ],
)
def test_patient_sheets_only_name_the_planned_muscles_hazards(
    muscle: str, present: list[str], absent: list[str], kb: Knowledge
) -> None:
    """Consent and after-care warn only of hazards on the planned muscles' technique cards
    (anatomy.yaml): e.g. no lung warning for a gluteus medius plan; QL's card lists pleura."""
    plan = plan_of("ql_low_back_ok", kb)
    card = next(t for t in plan.targets if t.muscle == "quadratus_lumborum")
    target = card.model_copy(
        update={
            "muscle": muscle,
            "name": kb.muscles[muscle].name,
            "hazards": [_hazard_of(kb, h) for h in kb.muscles[muscle].hazards],
        }
    )
    only = plan.model_copy(update={"targets": [target]})
    for doc in (
        docs.consent_form(only, kb, PATIENT, on=AS_OF),
        docs.aftercare_sheet(only, kb, PATIENT, on=AS_OF),
    ):
        body = doc.html.split("<body>", 1)[1].split('<div class="foot">', 1)[0].lower()
        for word in present:
            assert word.lower() in body, (doc.kind, word)
        for word in absent:
            assert word.lower() not in body, (doc.kind, word)


def test_reevaluation_summary_of_a_failing_course(kb: Knowledge, tmp_path: Path) -> None:
    data = json.loads((COURSES / "failing_low_back.json").read_text())
    report = evaluate_course(parse_episode(data, kb, as_of=AS_OF), kb, as_of=AS_OF)
    assert report.reevaluation is not None
    doc = docs.reevaluation_summary(report, kb, PATIENT, on=AS_OF)
    _, text = pdf_pages(doc, tmp_path)
    for expected in (
        "When TPIs fail: re-evaluation worksheet",
        "Technical review",
        "Perpetuating factors",
        "Risk factors for failure",
        "Differential diagnosis",
        "Alternatives",
        "Non-responder",
    ):
        assert expected in text, expected
    rows = re.findall(r"<tr><td>(.*?)</tr>", doc.html, flags=re.S)
    worksheet_rows = [r for r in rows if "status-" in r]
    assert worksheet_rows and all(STATEMENT_ID.search(r) for r in worksheet_rows)


def test_documents_are_dated_and_identify_the_patient_only_by_mrn(kb: Knowledge) -> None:
    doc = docs.consent_form(plan_of("ql_low_back_ok", kb), kb, PATIENT, on=date(2026, 11, 21))
    assert "MRN DOC-1" in doc.html and "2026-11-21" in doc.html


# --------------------------------------------------------------------------- identity, paper
def _every_document(kb: Knowledge, patient: docs.PatientLine) -> list[docs.Document]:
    """One of each document TriggerPath writes, for ``patient``."""
    plan = plan_of("ql_low_back_ok", kb)
    data = json.loads((COURSES / "failing_low_back.json").read_text())
    report = evaluate_course(parse_episode(data, kb, as_of=AS_OF), kb, as_of=AS_OF)
    sciatica = assess(parse_assessment_file("sciatica_below_knee", kb), kb, as_of=AS_OF)
    urgent = assess(parse_assessment_file("cauda_equina_signs", kb), kb, as_of=AS_OF)
    summary = docs.EpisodeSummary(
        regions=["low_back"],
        onset=date(2026, 6, 1),
        opened=AS_OF,
        closed_on=AS_OF,
        status="closed",
    )
    return [
        docs.consent_form(plan, kb, patient, on=AS_OF),
        docs.aftercare_sheet(plan, kb, patient, on=AS_OF),
        docs.exercise_program([("quadratus_lumborum", "right")], kb, patient, on=AS_OF),
        docs.procedure_note(_note_record(), kb, patient),
        docs.reevaluation_summary(report, kb, patient, on=AS_OF),
        *docs.referral_letters(sciatica, kb, patient, on=AS_OF, author="dr.test"),
        *docs.referral_letters(urgent, kb, patient, on=AS_OF, author="dr.test"),
        docs.episode_summary(summary, report, kb, patient, on=AS_OF),
    ]


def parse_assessment_file(name: str, kb: Knowledge) -> Any:
    from triggerpath.domain.validation import parse_assessment

    return parse_assessment(
        json.loads((ROOT / "examples" / "assessments" / f"{name}.json").read_text()), kb
    )


@pytest.mark.parametrize(("paper", "size"), [("letter", "612 x 792"), ("a4", "595.276 x 841.89")])
def test_every_document_names_the_patient_on_every_page_on_the_policy_paper(
    kb: Knowledge, tmp_path: Path, paper: str, size: str
) -> None:
    """Two identifiers and the MRN on every page of every document (NPSG.01.01.01): the banner
    on the first page and the running header and footer on each; the paper of the clinic policy
    (Letter 612 x 792 pt, A4 595 x 842 pt)."""
    patient = docs.PatientLine(
        "ID-77",
        "female",
        46,
        68,
        name="O'DONNELL, Áine Marie",
        born="1980-03-02",
        paper=paper,  # type: ignore[arg-type]
    )
    documents = _every_document(kb, patient)
    assert {d.kind for d in documents} >= {
        "consent",
        "aftercare",
        "exercises",
        "procedure_note",
        "reevaluation",
        "referral_letter",
        "episode_summary",
    }
    for doc in documents:
        pdf = tmp_path / f"{doc.filename_stem}.pdf"
        pdf.write_bytes(docs.render_pdf(doc))
        info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True)
        pages = int(re.search(r"Pages:\s+(\d+)", info.stdout).group(1))  # type: ignore[union-attr]
        assert f"Page size:       {size} pts" in info.stdout, (doc.kind, info.stdout)
        for page in range(1, pages + 1):
            text = subprocess.run(
                ["pdftotext", "-f", str(page), "-l", str(page), "-layout", str(pdf), "-"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            flat = " ".join(text.split())
            for shown in ("O'DONNELL, Áine Marie", "DOB 1980-03-02", "MRN ID-77"):
                assert shown in flat, (doc.kind, page, shown)


def test_referral_letters_go_to_the_service_of_each_redirect_and_red_flag(kb: Knowledge) -> None:
    """A letter per redirect, addressed to the service pathway.yaml names for that redirect;
    an urgent referral per red flag, to its service; with reasons and statement ids."""
    sciatica = assess(parse_assessment_file("sciatica_below_knee", kb), kb, as_of=AS_OF)
    assert sciatica.redirects == ["epidural_steroid_injection"]
    (letter,) = docs.referral_letters(sciatica, kb, PATIENT, on=AS_OF, author="dr.test")
    service = next(
        r.service for r in kb.pathway.redirects if r.code == "epidural_steroid_injection"
    )
    assert f"<strong>To:</strong> {service}" in letter.html
    assert "Lumbar radicular pain" in letter.html and "S000.22" in letter.statement_ids
    urgent = assess(parse_assessment_file("cauda_equina_signs", kb), kb, as_of=AS_OF)
    assert urgent.verdict == "urgent_referral"
    (u,) = docs.referral_letters(urgent, kb, PATIENT, on=AS_OF, author="dr.test")
    flag = next(f for f in kb.pathway.red_flags if f.id == "cauda_equina")
    assert f"<strong>To:</strong> {flag.service}" in u.html and "EMERGENCY" in u.html
    assert "S002.12" in u.statement_ids
    none = assess(parse_assessment_file("ql_chronic_low_back", kb), kb, as_of=AS_OF)
    assert docs.referral_letters(none, kb, PATIENT, on=AS_OF, author="dr.test") == []


def test_a_document_of_a_patient_without_a_recorded_name_says_so_loudly(kb: Knowledge) -> None:
    legacy = docs.PatientLine("OLD-1", "male", 70)
    html = docs.consent_form(plan_of("ql_low_back_ok", kb), kb, legacy, on=AS_OF).html
    assert "NAME NOT RECORDED" in html and "MRN <strong>OLD-1</strong>" in html
