"""Demo data for the web app: patients with assessments, plans, sessions and follow-ups.

Built from the shipped examples (``examples/courses/*.json`` for whole courses,
``examples/assessments/*.json`` for single assessments) through the same services the web
app uses, so every record is audited and the engine produces every result. Dates are moved
so that the examples' reference day (2026-11-21) is today: the demo stays current.

Development only: it also creates the demo users (``demo.clinician``, ``demo.nurse``) with
the well-known passwords below, which is why :func:`seed` refuses outside development.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from triggerpath.domain.assessment import Assessment
from triggerpath.domain.identity import age_on
from triggerpath.domain.planning import Injectate, InjectateSolution, Target, plan_procedure
from triggerpath.entrypoints.web.forms import GUIDANCE, TWITCH, technique_line
from triggerpath.errors import InvalidInput
from triggerpath.knowledge.loader import Knowledge
from triggerpath.services import clinical, users
from triggerpath.services.audit import AuditNote, Call
from triggerpath.services.episodes import COMPLICATIONS as SESSION_COMPLICATIONS
from triggerpath.services.episodes import PLAN_REQUEST_KIND
from triggerpath.services.model import Actor, Record
from triggerpath.services.payloads import (
    AssessmentIn,
    DocumentIn,
    EpisodeData,
    OutcomeData,
    PatientData,
    PlanData,
    PlanIn,
    SessionIn,
    SessionSite,
)
from triggerpath.services.uow import UowFactory

T = TypeVar("T")
#: the examples' "today" (tests/conftest.py AS_OF)
REFERENCE_DAY = date(2026, 11, 21)
DEMO_USERS = (
    ("demo.clinician", "clinician", "demo-clinician-pass"),
    ("demo.nurse", "nurse", "demo-nurse-pass"),
)
COURSES = ("failing_low_back", "responding_low_back", "subacute_neck_at_limit")
SINGLE_ASSESSMENTS = (
    "sciatica_below_knee",
    "levator_scapulae_on_apixaban",
    "cauda_equina_signs",
    "rhomboids_between_shoulder_blades",
)
#: Synthetic demo identities (invented; any likeness to a real person is chance): family name
#: per demo MRN, given names by the example's recorded sex.
DEMO_FAMILY_NAMES = (
    "Ashdown",
    "Brightwater",
    "Calloway",
    "Dunmore",
    "Everly",
    "Fairbank",
    "Greyson",
)
DEMO_GIVEN_NAMES = {
    "female": ("Avery Jo", "Bea", "Cleo Marie", "Dana"),
    "male": ("Abel", "Bram Lee", "Cyrus", "Dario"),
}
#: course complication id -> session complication of the services (the episodes map, inverted)
COMPLICATIONS = {course: session for session, course in SESSION_COMPLICATIONS.items()}


@dataclass
class Seeder:
    uow_factory: UowFactory
    kb: Knowledge
    today: date
    now: datetime
    actor: Actor

    @property
    def shift(self) -> timedelta:
        return self.today - REFERENCE_DAY

    def day(self, iso: str) -> date:
        return date.fromisoformat(iso) + self.shift

    def run(self, action: str, fn: Callable[[Any, AuditNote], T]) -> T:
        return Call(self.uow_factory, self.actor, action, "demo-data", self.now).run(fn)

    # ------------------------------------------------------------------ records
    def identity(self, mrn: str, a: Assessment) -> PatientData:
        """A synthetic name and a date of birth giving the example's age today."""
        n = int(mrn.rsplit("-", 1)[1])
        given = DEMO_GIVEN_NAMES.get(a.patient.sex, ("Alex", "Sam", "Robin", "Kit"))
        age = a.patient.age_years
        born = date(self.today.year - age - 1, 1, 1) + timedelta(days=40 * n)
        while age_on(born, self.today) > age:
            born += timedelta(days=30)
        return PatientData(
            mrn=mrn,
            family_name=DEMO_FAMILY_NAMES[(n - 1) % len(DEMO_FAMILY_NAMES)],
            given_name=given[(n - 1) % len(given)],
            birth_date=born,
            sex=a.patient.sex,
        )

    def patient(self, mrn: str, a: Assessment, regions: list[str], onset: date | None) -> Record:
        data = self.identity(mrn, a)
        patient = self.run(
            "patient.create",
            lambda uow, note: clinical.create_patient(uow, note, self.actor, data, self.now),
        )
        episode = EpisodeData.model_validate({"regions": regions, "onset": onset, "note": "Demo"})
        return self.run(
            "episode.create",
            lambda uow, note: clinical.record_episode(
                uow, note, self.actor, patient.id, episode, self.now
            ),
        )

    def assessment(self, episode: Record, a: Assessment, as_of: date) -> Record:
        body = AssessmentIn(input=a, as_of=as_of)
        return self.run(
            "assessment.create",
            lambda uow, note: clinical.record_assessment(
                uow, note, self.actor, episode.id, body, self.kb, today=self.today, now=self.now
            ),
        )

    def plan(
        self, assessment: Record, a: Assessment, course_plan: dict[str, Any], as_of: date
    ) -> tuple[Record, PlanData] | None:
        sides = {tp.muscle: tp.side for tp in a.trigger_points}
        targets = [
            Target.model_validate(
                {
                    "muscle": m,
                    "side": sides.get(m, "bilateral"),
                    "sites": 2,
                    "volume_ml_per_site": self.kb.muscles[m].volume_ml_max,
                }
            )
            for m in course_plan.get("muscles", [])
            if m in self.kb.muscles
        ]
        agent, percent = _injectate(course_plan.get("injectate") or "lidocaine 1%")
        injectate = Injectate(solutions=[InjectateSolution(agent=agent, percent=percent)])
        plan = plan_procedure(a, targets, injectate, as_of=as_of, knowledge=self.kb)
        acknowledged = list(plan.acknowledgements.missing)
        if acknowledged:
            plan = plan_procedure(
                a,
                targets,
                injectate,
                as_of=as_of,
                knowledge=self.kb,
                acknowledged_cautions=acknowledged,
            )
        if plan.status != "ready":
            return None
        plan_in = PlanIn(
            targets=targets,
            injectate=injectate,
            acknowledged_cautions=acknowledged,
            planned_for=as_of,
        )
        request = {
            "targets": [t.model_dump(mode="json") for t in targets],
            "injectate": injectate.model_dump(mode="json"),
            "prior_24h": [],
            "acknowledged_cautions": acknowledged,
            "steroid": None,
            "as_of": as_of.isoformat(),
        }

        def run(uow: Any, note: AuditNote) -> Record:
            record = clinical.record_plan(
                uow, note, self.actor, assessment.id, plan_in, self.kb, self.now, today=as_of
            )
            import base64

            clinical.record_document(
                uow,
                AuditNote(),
                self.actor,
                record.patient_id,
                DocumentIn(
                    kind=PLAN_REQUEST_KIND,
                    title="Procedure planner input",
                    media_type="application/json",
                    content_base64=base64.b64encode(json.dumps(request).encode()).decode(),
                    source_id=record.id,
                    knowledge_version=self.kb.version,
                ),
                self.now,
            )
            return record

        stored = self.run("plan.create", run)
        return stored, PlanData.model_validate(stored.current.data)

    def session(
        self, episode: Record, plan: tuple[Record, PlanData] | None, s: dict[str, Any]
    ) -> Record:
        when = datetime.combine(self.day(s["date"]), time(10, 0), tzinfo=UTC)
        if plan is not None:
            sites = [
                SessionSite(
                    muscle=p.muscle,
                    side=p.side,
                    agent=p.agent,
                    concentration_percent=p.concentration_percent,
                    volume_ml=p.volume_ml,
                )
                for p in plan[1].sites
            ]
        else:
            sites = [
                SessionSite(
                    muscle=m,
                    side="bilateral",
                    agent="lidocaine",
                    concentration_percent=1,
                    volume_ml=1,
                )
                for m in s.get("muscles", [])
            ]
        twitch = s.get("twitch_elicited")
        # only what the example course file records: no aspiration or consent is invented
        note = technique_line(
            {
                "guidance": GUIDANCE.get(s.get("guidance") or "", ""),
                "twitch": TWITCH["yes" if twitch else "no" if twitch is False else "unknown"],
            }
        )
        body = SessionIn(
            performed_at=when,
            plan_id=plan[0].id if plan else None,
            sites=sites,
            complications=[
                COMPLICATIONS[c] for c in s.get("complications", []) if c in COMPLICATIONS
            ]
            or ["none"],
            note=note + ("\n" + s["note"] if s.get("note") else ""),
        )
        return self.run(
            "session.create",
            lambda uow, note_: clinical.record_session(
                uow, note_, self.actor, episode.id, body, self.kb, self.now
            ),
        )

    def outcomes(self, episode: Record, items: list[OutcomeData]) -> None:
        def run(uow: Any, note: AuditNote) -> None:
            for item in items:
                clinical.record_outcome(uow, note, self.actor, episode.id, item, self.now)

        self.run("outcome.create", run)

    # ------------------------------------------------------------------ examples
    def course(self, mrn: str, data: dict[str, Any]) -> None:
        a = Assessment.model_validate(data["assessment"])
        sessions = data.get("sessions", [])
        first = self.day(sessions[0]["date"]) if sessions else self.today
        as_of = first - timedelta(days=7)
        onset = as_of - timedelta(weeks=a.pain.duration_weeks) if a.pain.duration_weeks else None
        episode = self.patient(mrn, a, list(a.regions), onset)
        assessment = self.assessment(episode, a, as_of)
        plan = self.plan(assessment, a, data.get("plan") or {}, as_of) if data.get("plan") else None
        for i, s in enumerate(sessions):
            record = self.session(episode, plan, s)
            day = self.day(s["date"])
            items = [
                OutcomeData(
                    measured_on=day,
                    instrument="nrs",
                    value=s["pre_nrs"],
                    session_id=record.id,
                    relation="before",
                    note="before the injection",
                )
            ]
            if s.get("post_nrs") is not None:
                nxt = (
                    self.day(sessions[i + 1]["date"]) - timedelta(days=1)
                    if i + 1 < len(sessions)
                    else day + timedelta(days=14)
                )
                follow = min(nxt, day + timedelta(days=14), self.today)
                common: dict[str, Any] = {
                    "measured_on": follow,
                    "session_id": record.id,
                    "relation": "after",
                }
                items.append(
                    OutcomeData(instrument="nrs", value=s["post_nrs"], note="follow-up", **common)
                )
                if s.get("relief_duration_days") is not None:
                    items.append(
                        OutcomeData(
                            instrument="relief_days", value=s["relief_duration_days"], **common
                        )
                    )
                for flag in ("physical_therapy", "home_exercise"):
                    if s.get(flag) is not None:
                        items.append(
                            OutcomeData(instrument=flag, value=1 if s[flag] else 0, **common)
                        )
                for inst in ("peg", "odi", "ndi"):
                    answers = s.get(inst)
                    if answers:
                        from triggerpath.domain.scoring import score

                        result = score(inst, answers, self.kb, field=inst)
                        items.append(
                            OutcomeData(
                                instrument=inst,
                                value=result.score,
                                items={
                                    f"item{j + 1}": v
                                    for j, v in enumerate(answers)
                                    if v is not None
                                },
                                **common,
                            )
                        )
            self.outcomes(episode, items)

    def single(self, mrn: str, data: dict[str, Any]) -> None:
        a = Assessment.model_validate(data)
        as_of = self.today - timedelta(days=1)
        onset = as_of - timedelta(weeks=a.pain.duration_weeks) if a.pain.duration_weeks else None
        episode = self.patient(mrn, a, list(a.regions), onset)
        self.assessment(episode, a, as_of)


def _injectate(text: str) -> tuple[str, Decimal]:
    m = re.match(r"^\s*([a-z]+)\s+([\d.]+)\s*%", text)
    if not m:
        return "lidocaine", Decimal(1)
    return m.group(1), Decimal(m.group(2))


def ensure_demo_users(uow_factory: UowFactory, now: datetime) -> list[tuple[str, str, str]]:
    """The demo users (created when missing): (username, role, password)."""
    with uow_factory() as uow:
        for username, role, password in DEMO_USERS:
            if uow.users.by_username(username) is None:
                users.create_user(
                    uow,
                    username=username,
                    role=role,
                    password=password,
                    now=now,
                    created_by=None,
                    dev_only=True,  # well-known password: refused outside development
                )
        uow.commit()
    return list(DEMO_USERS)


def seed(
    uow_factory: UowFactory,
    kb: Knowledge,
    examples: Path,
    *,
    today: date,
    now: datetime,
    development: bool,
) -> list[str]:
    """Create the demo patients (once); returns the MRNs created (empty when already there)."""
    if not development:
        raise InvalidInput.single(
            "TRIGGERPATH_ENV", "demo data (with its well-known passwords) is for development only"
        )
    if not (examples / "courses").is_dir() or not (examples / "assessments").is_dir():
        raise InvalidInput.single("--examples", f"{examples} has no courses/ and assessments/")
    ensure_demo_users(uow_factory, now)
    with uow_factory() as uow:
        if uow.records.mrn_owner("DEMO-001") is not None:
            return []
    seeder = Seeder(uow_factory, kb, today, now, Actor("demo.clinician", "clinician"))
    created: list[str] = []
    n = 0
    for name in COURSES:
        n += 1
        mrn = f"DEMO-{n:03d}"
        seeder.course(mrn, json.loads((examples / "courses" / f"{name}.json").read_text()))
        created.append(f"{mrn} ({name.replace('_', ' ')})")
    for name in SINGLE_ASSESSMENTS:
        n += 1
        mrn = f"DEMO-{n:03d}"
        seeder.single(mrn, json.loads((examples / "assessments" / f"{name}.json").read_text()))
        created.append(f"{mrn} ({name.replace('_', ' ')})")
    return created
