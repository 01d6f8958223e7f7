"""Storage on SQLite and PostgreSQL: schema, append-only history, optimistic concurrency,
parallel writers, crash safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from triggerpath.adapters import database, orm
from triggerpath.adapters.unit_of_work import SqlUnitOfWork as UnitOfWork
from triggerpath.domain.policy import Policy
from triggerpath.errors import Conflict, NotFound
from triggerpath.services import clinical, records, users
from triggerpath.services.audit import AuditNote, Call
from triggerpath.services.auth import Reauthenticated
from triggerpath.services.model import (
    Actor,
    Addendum,
    AuditEvent,
    AuditQuery,
    NextVersion,
    RecordQuery,
    Version,
    Window,
)
from triggerpath.services.payloads import PatientData
from triggerpath.services.records import Change, VersionConflict, Write

from ..conftest import IDENTITY
from .conftest import Backend, Service


def _now() -> datetime:
    return datetime.now(UTC)


def _clinician(service: Service) -> Actor:
    return Actor(service.usernames["clinician"], "clinician")


def _write(uow: UnitOfWork, actor: Actor) -> Write:
    return Write(uow, AuditNote(), actor, _now())


def _new_patient(service: Service) -> tuple[uuid.UUID, PatientData]:
    data = PatientData(
        **{**IDENTITY, "birth_date": "1960-05-17"}, mrn=f"S-{uuid.uuid4().hex[:10]}", sex="female"
    )
    with service.backend.uow() as uow:
        rec = clinical.create(_write(uow, _clinician(service)), "patient", None, data)
        uow.commit()
    return rec.id, data


def test_migrations_create_exactly_the_tables_the_code_uses(backend: Backend) -> None:
    assert database.current_revision(backend.engine) == database.head_revision()
    with backend.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), orm.metadata)
    assert diff == []
    assert database.readiness(backend.engine).ready


def test_upgrade_is_idempotent(backend: Backend) -> None:
    assert database.upgrade(backend.engine) == database.head_revision()


#: A column of each append-only table that nothing but the trigger stops us changing.
FREE_TEXT = {
    "record_versions": "reason",
    "audit_events": "outcome",
    "policy_versions": "reason",
    "record_addenda": "text",
}


@pytest.mark.parametrize("table", orm.APPEND_ONLY)
def test_append_only_tables_refuse_update_and_delete(service: Service, table: str) -> None:
    _new_patient(service)  # a row in record_versions
    with service.backend.uow() as uow:
        uow.audit.add(AuditEvent(_now(), "append-only", None, None, "test.row", "success"))
        if table == "record_addenda":
            pid = next(iter(uow.records.page(RecordQuery("patient"), Window(limit=1))[0])).id
            who = service.usernames["clinician"]
            uow.records.add_addendum(Addendum(pid, 1, "a note", who, "clinician", _now()))
        if table == "policy_versions" and uow.policy.current() is None:
            defaults = Policy().model_dump(mode="json")
            uow.policy.add(1, defaults, _now(), service.usernames["admin"], "defaults, explicitly")
        uow.commit()
    t = orm.metadata.tables[table]
    for stmt in (t.update().values({FREE_TEXT[table]: "rewritten"}), t.delete()):
        with (
            service.backend.engine.connect() as conn,
            pytest.raises(sa.exc.DBAPIError) as exc,
            conn.begin(),
        ):
            conn.execute(stmt)
        assert "append-only" in str(exc.value)
    with service.backend.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()


def test_correction_appends_a_version_with_who_when_why(service: Service) -> None:
    pid, data = _new_patient(service)
    nurse = Actor(service.usernames["clinician"], "clinician")
    with service.backend.uow() as uow:
        fixed = data.model_copy(update={"birth_date": date(1961, 5, 17)})
        rec = clinical.correct(_write(uow, nurse), "patient", pid, Change(1, "typo in year"), fixed)
        uow.commit()
    assert rec.version == 2
    with service.backend.uow() as uow:
        _, versions = records.history(uow, AuditNote(), "patient", pid)
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].data["birth_year"] == 1960 and versions[1].data["birth_year"] == 1961
    assert versions[1].reason == "typo in year" and versions[1].recorded_by == nurse.username
    assert versions[0].reason is None


def test_stale_version_is_a_conflict_and_changes_nothing(service: Service) -> None:
    pid, data = _new_patient(service)
    actor = _clinician(service)
    for year, expected in ((1970, 1), (1980, 1)):
        with service.backend.uow() as uow:
            try:
                fixed = data.model_copy(update={"birth_date": date(year, 5, 17)})
                clinical.correct(
                    _write(uow, actor), "patient", pid, Change(expected, "update"), fixed
                )
                uow.commit()
            except VersionConflict as exc:
                assert exc.current_version == 2
    with service.backend.uow() as uow:
        rec = records.get(uow, AuditNote(), "patient", pid)
        assert rec.version == 2 and rec.current.data["birth_year"] == 1970


def test_mrn_is_unique(service: Service) -> None:
    _, data = _new_patient(service)
    with service.backend.uow() as uow, pytest.raises(Conflict, match="mrn"):
        clinical.create(_write(uow, _clinician(service)), "patient", None, data)


def test_signed_record_is_immutable_but_can_be_retracted(service: Service) -> None:
    patient = service.patient()
    episode = service.episode(patient["id"])
    a = service.assessment(episode["id"])
    aid = uuid.UUID(a["id"])
    actor = _clinician(service)
    with service.backend.uow() as uow:
        proof = Reauthenticated(actor.username, _now())  # what signatures.confirm hands over
        signed = records.sign(_write(uow, actor), "assessment", aid, Change(1), proof)
        uow.commit()
    assert signed.signed and signed.version == 2
    with service.backend.uow() as uow, pytest.raises(Conflict, match="signed"):
        change = Change(2, "change")
        records.correct(_write(uow, actor), "assessment", aid, change, signed.current.data)
    with service.backend.uow() as uow:
        gone = records.retract(_write(uow, actor), "assessment", aid, Change(2, "wrong patient"))
        uow.commit()
    assert gone.status == "entered_in_error" and gone.signed and gone.version == 3
    assert gone.current.data == signed.current.data


def test_parallel_writers_from_the_same_version_exactly_one_wins(service: Service) -> None:
    """N clinicians save the same version at the same moment: one commit, N-1 conflicts."""
    pid, data = _new_patient(service)
    n = 8
    barrier = threading.Barrier(n)
    results: list[str] = []
    lock = threading.Lock()

    def write(i: int) -> None:
        barrier.wait()
        try:
            with UnitOfWork(service.backend.engine) as uow:
                fixed = data.model_copy(update={"birth_date": date(1950 + i, 5, 17)})
                change = Change(1, f"writer {i}")
                clinical.correct(_write(uow, _clinician(service)), "patient", pid, change, fixed)
                uow.commit()
            outcome = f"ok {i}"
        except (VersionConflict, sa.exc.IntegrityError):
            outcome = "conflict"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r.startswith("ok")]
    assert len(winners) == 1 and results.count("conflict") == n - 1
    with service.backend.uow() as uow:
        _, versions = records.history(uow, AuditNote(), "patient", pid)
    assert len(versions) == 2
    winner = int(winners[0].split()[1])
    assert versions[1].data["birth_year"] == 1950 + winner
    assert versions[1].reason == f"writer {winner}"


def test_parallel_read_modify_write_loses_no_update(service: Service) -> None:
    """Writers each add to a counter with retry on conflict: every increment survives."""
    patient = service.patient()
    episode = service.episode(patient["id"])
    outcome = service.outcome(episode["id"])
    oid = uuid.UUID(outcome["id"])
    writers, increments = 4, 5
    barrier = threading.Barrier(writers)
    conflicts = [0] * writers

    def work(i: int) -> None:
        barrier.wait()
        done = 0
        while done < increments:
            with UnitOfWork(service.backend.engine) as uow:
                rec = records.get(uow, AuditNote(), "outcome", oid)
            data = dict(rec.current.data, value=rec.current.data["value"] + 1)
            try:
                with UnitOfWork(service.backend.engine) as uow:
                    change = Change(rec.version, f"writer {i}")
                    records.correct(_write(uow, _clinician(service)), "outcome", oid, change, data)
                    uow.commit()
                done += 1
            except (VersionConflict, sa.exc.IntegrityError):
                conflicts[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with service.backend.uow() as uow:
        rec, versions = records.history(uow, AuditNote(), "outcome", oid)
    total = writers * increments
    assert rec.current.data["value"] == outcome["data"]["value"] + total
    assert len(versions) == total + 1
    assert [v.data["value"] for v in versions] == [
        outcome["data"]["value"] + k for k in range(total + 1)
    ]


def test_interleaved_writers_on_postgres_the_version_guard_stops_the_second(
    pg_url: str,
) -> None:
    """Both read version 1 inside open transactions; the second's update matches no row.

    This is the race the pre-check cannot see (READ COMMITTED, both reads before either
    commit); only the conditional UPDATE on ``records.current_version`` catches it.
    """
    engine = database.make_engine(pg_url)
    try:
        database.upgrade(engine)
        with UnitOfWork(engine) as uow:
            users.create_user(
                uow,
                username=f"racer-{uuid.uuid4().hex[:6]}",
                role="clinician",
                password=None,
                now=_now(),
                created_by=None,
            )
            racer = uow.users.page(Window(limit=1000))[0][-1].username
            uow.commit()
        actor = Actor(racer, "clinician")
        data = PatientData(**IDENTITY, mrn=f"R-{uuid.uuid4().hex[:8]}", sex="male")
        with UnitOfWork(engine) as uow:
            pid = clinical.create(_write(uow, actor), "patient", None, data).id
            uow.commit()
        first, second = UnitOfWork(engine), UnitOfWork(engine)
        with first, second:
            a = records.get(first, AuditNote(), "patient", pid)
            b = records.get(second, AuditNote(), "patient", pid)
            assert a.version == b.version == 1
            fixed = {**a.current.data, "birth_year": 1950}
            records.correct(_write(first, actor), "patient", pid, Change(1, "first"), fixed)
            first.commit()
            new = Version(2, "active", {**b.current.data}, _now(), racer, "second")
            assert second.records.append(NextVersion(pid, 1, new)) is False
        with UnitOfWork(engine) as uow:
            _, versions = records.history(uow, AuditNote(), "patient", pid)
        assert [v.reason for v in versions] == [None, "first"]
    finally:
        engine.dispose()


CHILD = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from triggerpath.adapters.database import make_engine
    from triggerpath.services import clinical
    from triggerpath.services.audit import AuditNote
    from triggerpath.services.model import Actor, AuditEvent
    from triggerpath.services.payloads import PatientData, EpisodeData
    from triggerpath.services.records import Write, create
    from triggerpath.adapters.unit_of_work import SqlUnitOfWork as UnitOfWork

    url, user, mrn = sys.argv[1:4]
    engine = make_engine(url)
    actor = Actor(user, "clinician")
    now = datetime.now(UTC)
    with UnitOfWork(engine) as uow:
        data = PatientData(
            family_name="Crash", given_name="Test", birth_date="1970-01-02", mrn=mrn, sex="female"
        )
        p = clinical.create(Write(uow, AuditNote(), actor, now), "patient", None, data)
        create(Write(uow, AuditNote(), actor, now), "episode", {"regions": ["neck"]}, p.id)
        uow.audit.add(AuditEvent(now, "crash-test", user, "clinician", "patient.create", "success"))
        print(p.id, flush=True)      # rows written, transaction still open
        time.sleep(120)
        uow.commit()
    """
)


def test_writer_killed_mid_transaction_leaves_no_partial_record(service: Service) -> None:
    mrn = f"K-{uuid.uuid4().hex[:10]}"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, service.backend.url, service.usernames["clinician"], mrn],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        assert line, child.stderr.read() if child.stderr else "child wrote nothing"
        pid = uuid.UUID(line)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
    r, v = orm.records, orm.record_versions
    with service.backend.engine.connect() as conn:
        assert conn.execute(sa.select(r).where(r.c.patient_id == pid)).first() is None
        assert conn.execute(sa.select(v).where(v.c.record_id == pid)).first() is None
        assert conn.execute(sa.select(r).where(r.c.mrn == mrn)).first() is None
    with service.backend.uow() as uow:
        events, _ = uow.audit.page(AuditQuery(request_id="crash-test"), Window())
        assert events == []
    # the database is healthy and the MRN is free: the same patient can be registered now
    with service.backend.uow() as uow:
        data = PatientData(**IDENTITY, mrn=mrn, sex="female")
        clinical.create(_write(uow, _clinician(service)), "patient", None, data)
        uow.commit()


def test_every_call_leaves_exactly_one_event_even_when_it_fails(service: Service) -> None:
    actor = _clinician(service)
    mark = service.watermark()
    call = Call(service.backend.uow, actor, "patient.read", "req-1", _now())
    with pytest.raises(NotFound):
        call.run(lambda uow, note: records.get(uow, note, "patient", uuid.uuid4()))
    pid, _ = _new_patient(service)
    call = Call(service.backend.uow, actor, "patient.read", "req-2", _now())
    call.run(lambda uow, note: records.get(uow, note, "patient", pid))
    events = [e for e in service.events_after(mark) if e.request_id.startswith("req-")]
    assert [(e.request_id, e.outcome) for e in events] == [
        ("req-1", "not_found"),
        ("req-2", "success"),
    ]
    assert events[1].patient_id == pid
