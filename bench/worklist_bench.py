"""How long the worklist takes for a clinic of N open episodes (not a test).

Run: ``.venv/bin/python -m bench.worklist_bench [--episodes 50 200] [--runs 5]``; writes
``bench/results/worklist.json``. Each episode is a patient with one assessment, one plan and
one session (recorded through the services, SQLite in a temporary folder); the figure is the
median wall time of :func:`triggerpath.services.worklist.worklist` (read every record once
per kind, run the course engine per episode) and the number of items it returned.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from triggerpath.adapters import database
from triggerpath.adapters.unit_of_work import SqlUnitOfWork
from triggerpath.knowledge import load_knowledge
from triggerpath.services import clinical, users
from triggerpath.services import worklist as service
from triggerpath.services.audit import AuditNote
from triggerpath.services.model import Actor
from triggerpath.services.payloads import AssessmentIn, EpisodeData, PatientData, PlanIn, SessionIn

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "worklist.json"


def _seed(engine: Any, n: int) -> None:
    kb = load_knowledge()
    now = datetime.now(UTC)
    actor = Actor("bench.clinician", "clinician")
    assessment = json.loads((ROOT / "examples/assessments/ql_chronic_low_back.json").read_text())
    plan = json.loads((ROOT / "examples/plans/ql_low_back_ok.json").read_text())
    plan.pop("assessment")
    with SqlUnitOfWork(engine) as uow:
        users.create_user(
            uow, username=actor.username, role="clinician", password=None, now=now, created_by=None
        )
        uow.commit()
    for i in range(n):
        first = now - timedelta(days=i % 40)
        with SqlUnitOfWork(engine) as uow:
            note = AuditNote()
            p = clinical.create_patient(
                uow, note, actor, PatientData(mrn=f"B-{i}", sex="male"), now
            )
            e = clinical.record_episode(
                uow, note, actor, p.id, EpisodeData(regions=["low_back"]), now
            )
            body = AssessmentIn.model_validate({"input": assessment, "as_of": str(first.date())})
            a = clinical.record_assessment(
                uow, note, actor, e.id, body, kb, today=date.today(), now=now
            )
            pl = clinical.record_plan(uow, note, actor, a.id, PlanIn.model_validate(plan), kb, now)
            site = {
                "muscle": "quadratus_lumborum",
                "side": "right",
                "agent": "lidocaine",
                "concentration_percent": 1.0,
                "volume_ml": 3,
            }
            s = SessionIn.model_validate(
                {"performed_at": first.isoformat(), "plan_id": str(pl.id), "sites": [site]}
            )
            clinical.record_session(uow, note, actor, e.id, s, kb, now)
            uow.commit()


def measure(n: int, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = database.make_engine(f"sqlite:///{tmp}/bench.db")
        database.upgrade(engine)
        _seed(engine, n)
        kb = load_knowledge()
        times, items = [], 0
        for _ in range(runs):
            began = time.perf_counter()
            with SqlUnitOfWork(engine) as uow:
                found = service.worklist(uow, AuditNote(), kb, as_of=date.today())
            times.append(time.perf_counter() - began)
            items = len(found.items)
        engine.dispose()
    return {
        "episodes": n,
        "runs": runs,
        "median_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "items": items,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows = [measure(n, args.runs) for n in args.episodes]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"backend": "sqlite", "results": rows}, indent=1) + "\n")
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
