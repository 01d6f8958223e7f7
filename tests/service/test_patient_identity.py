"""Patient identity (issue 17 §1, hazard H-WRONG-PATIENT) on SQLite and PostgreSQL.

Two identifiers (name and date of birth) besides the MRN, by one rule (domain/identity.py,
applied by the safety kernel) on every path that writes a patient: the REST API (create and
correct), the web form, the demo data of the CLI and the clinic policy's ``minimal`` choice.
A refused write stores nothing and names the field and the rule. Search by name, date of
birth or MRN; migration 0006 up and down keeps legacy patients readable.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command

from triggerpath.adapters import database, orm
from triggerpath.bootstrap import uow_factory
from triggerpath.domain.identity import age_on
from triggerpath.entrypoints.web import demo
from triggerpath.knowledge import load_knowledge
from triggerpath.services.auth import SESSION_COOKIE
from triggerpath.services.banner import banner_of
from triggerpath.services.model import RecordQuery, Window
from triggerpath.services.payloads import PatientData

from ..conftest import IDENTITY, ROOT
from .conftest import PASSWORD, Service, synthetic_name
from .test_migration_0005 import (
    _old_session,
    empty_url,  # noqa: F401 - the fixture: fresh SQLite / PG
)

PATIENTS = "/api/v1/patients"


def _errors(r: Any) -> dict[str, str]:
    assert r.status_code == 422, r.text
    return {e["field"]: e.get("rule") or e["reason"] for e in r.json()["errors"]}


def _count(service: Service, mrn: str) -> int:
    found = service.get(PATIENTS, params={"mrn": mrn})
    assert found.status_code == 200, found.text
    return int(found.json()["total"])


def _mrn() -> str:
    return f"ID-{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------- API create
def test_create_without_names_or_birth_date_is_refused_and_stores_nothing(
    service: Service,
) -> None:
    mrn = _mrn()
    mark = service.watermark()
    errs = _errors(service.post(PATIENTS, json={"mrn": mrn, "sex": "female"}))
    assert errs == {
        "family_name": "identity.required",
        "given_name": "identity.required",
        "birth_date": "identity.required",
    }
    assert _count(service, mrn) == 0
    events = [e for e in service.events_after(mark) if e.action == "patient.create"]
    assert [e.outcome for e in events] == ["invalid"]


def test_sex_has_no_default_and_only_the_fhir_value_set(service: Service) -> None:
    body = {**IDENTITY, "mrn": _mrn()}
    assert "sex" in _errors(service.post(PATIENTS, json=body))
    assert "sex" in _errors(service.post(PATIENTS, json={**body, "sex": "f"}))
    for sex in ("female", "male", "other", "unknown"):  # FHIR administrative-gender
        made = service.patient(sex=sex)
        assert made["data"]["sex"] == sex


def test_names_are_bounded_letters_without_control_characters(service: Service) -> None:
    bad = {
        "Sm1th": "identity.name_invalid",  # a digit is a typing error
        " Smith": "identity.name_invalid",  # space before
        "   ": "identity.required",
        "O'Brien<script>": "identity.name_invalid",
        "-.'": "identity.name_invalid",  # no letter
    }
    for value, rule in bad.items():
        errs = _errors(
            service.post(
                PATIENTS, json={**IDENTITY, "mrn": _mrn(), "sex": "male", "family_name": value}
            )
        )
        assert errs == {"family_name": rule}, value
    # a control character: refused before the kernel (middleware) or by it, naming the field
    r = service.post(
        PATIENTS, json={**IDENTITY, "mrn": _mrn(), "sex": "male", "given_name": "An\x07n"}
    )
    assert r.status_code == 422 and "given_name" in r.text and "control character" in r.text
    too_long = service.post(
        PATIENTS, json={**IDENTITY, "mrn": _mrn(), "sex": "male", "family_name": "A" * 101}
    )
    assert "family_name" in _errors(too_long)
    # any script, apostrophes, hyphens, combining marks: kept exactly as typed
    for family, given in (("Nguyễn", "Thị Lan"), ("O’Brien-Smith", "Seán"), ("李", "小龍")):
        made = service.patient(family_name=family, given_name=given)
        assert (made["data"]["family_name"], made["data"]["given_name"]) == (family, given)


def test_birth_date_not_in_the_future_nor_implausibly_old(service: Service) -> None:
    today = datetime.now(UTC).date()
    base = {**IDENTITY, "mrn": _mrn(), "sex": "female"}
    future = (today + timedelta(days=3)).isoformat()
    assert _errors(service.post(PATIENTS, json={**base, "birth_date": future})) == {
        "birth_date": "time.future"
    }
    old = date(today.year - 130, 1, 1).isoformat()  # oldest verified human: 122 y
    assert _errors(service.post(PATIENTS, json={**base, "birth_date": old})) == {
        "birth_date": "identity.birth_date_implausible"
    }
    assert "birth_date" in _errors(service.post(PATIENTS, json={**base, "birth_date": 86400}))
    assert "birth_date" in _errors(
        service.post(PATIENTS, json={**base, "birth_date": "1974-13-01"})
    )
    mismatch = {**base, "birth_date": "1974-05-17", "birth_year": 1975}
    assert _errors(service.post(PATIENTS, json=mismatch)) == {
        "birth_year": "1975 is not the year of birth_date; send one"
    }
    made = service.patient(birth_date="1924-02-29")  # 100-odd years: plausible
    assert made["data"]["birth_year"] == 1924  # kept from the date for the year-based rules


def test_correction_must_keep_two_identifiers(service: Service) -> None:
    p = service.patient()
    url = f"{PATIENTS}/{p['id']}"
    dropped = {k: v for k, v in p["data"].items() if k not in ("family_name", "birth_date")}
    r = service.put(url, json={"version": 1, "reason": "drop the name", "data": dropped})
    assert _errors(r) == {"family_name": "identity.required", "birth_date": "identity.required"}
    assert service.get(url).json()["version"] == 1  # nothing stored
    renamed = {
        **p["data"],
        "family_name": "Zzrenamed"
        + secrets.token_hex(2).translate(str.maketrans("0123456789", "ghijklmnop")),
    }
    ok = service.put(url, json={"version": 1, "reason": "name from the ID card", "data": renamed})
    assert ok.status_code == 200, ok.text
    found = service.get(PATIENTS, params={"name": renamed["family_name"]}).json()
    assert [x["id"] for x in found["items"]] == [p["id"]]  # the index row follows the version


def test_onset_before_the_date_of_birth_is_refused(service: Service) -> None:
    p = service.patient(birth_date="1990-06-15")
    r = service.post(
        f"{PATIENTS}/{p['id']}/episodes", json={"regions": ["neck"], "onset": "1990-03-01"}
    )
    assert _errors(r) == {"onset": "time.before_birth"}


# --------------------------------------------------------------------------- search
def test_search_by_name_date_of_birth_and_mrn(service: Service) -> None:
    family = synthetic_name()
    a = service.patient(family_name=family, given_name="Émile Joseph", birth_date="1961-03-09")
    b = service.patient(family_name=family, given_name="Ana", birth_date="1983-11-30")
    other = service.patient()

    def ids(**params: str) -> list[str]:
        r = service.get(PATIENTS, params=params)
        assert r.status_code == 200, r.text
        return sorted(x["id"] for x in r.json()["items"])

    assert ids(name=family) == sorted([a["id"], b["id"]])
    assert ids(name=f"emile {family.upper()}") == [a["id"]]  # any order, case, accents
    assert ids(name=family, birth_date="1983-11-30") == [b["id"]]
    assert ids(mrn=other["data"]["mrn"]) == [other["id"]]
    assert ids(name=family, mrn=other["data"]["mrn"]) == []
    assert ids(name="%") == []  # a LIKE wildcard is a character, not "everything"
    assert "query.birth_date" in _errors(service.get(PATIENTS, params={"birth_date": "1983"}))
    assert service.get(PATIENTS, params={"name": "x" * 202}).status_code == 422


# --------------------------------------------------------------------------- policy
def test_minimal_identifiers_policy_requires_only_mrn_and_sex(service: Service) -> None:
    def policy(identifiers: str, reason: str) -> None:
        current = service.get("/api/v1/settings/policy", role="admin").json()
        body = {
            "version": current["version"],
            "reason": reason,
            "policy": {**current["policy"], "patient_identifiers": identifiers},
        }
        r = service.put("/api/v1/settings/policy", role="admin", json=body)
        assert r.status_code == 200, r.text

    policy("minimal", "embedded in the EHR, which holds identity")
    try:
        made = service.patient(family_name=None, given_name=None, birth_date=None)
        assert made["data"]["family_name"] is None
        # what is given is still checked
        errs = _errors(
            service.post(PATIENTS, json={"mrn": _mrn(), "sex": "male", "family_name": "B4d"})
        )
        assert errs == {"family_name": "identity.name_invalid"}
    finally:
        policy("two_identifiers", "back to the default: two identifiers")
    assert "family_name" in _errors(service.post(PATIENTS, json={"mrn": _mrn(), "sex": "male"}))


# --------------------------------------------------------------------------- web form
class _Browser:
    """The web app as a signed-in clinician's browser (session cookie sent by hand: the
    cookie is Secure and the test client speaks http)."""

    def __init__(self, service: Service) -> None:
        name = service.usernames["clinician"]
        r = service.client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        token = r.headers["set-cookie"].split("=", 1)[1].split(";")[0]
        self.client = service.client
        self.headers = {"Cookie": f"{SESSION_COOKIE}={token}"}
        page = self.get("/app/patients/new")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf, page.text[:500]
        self.csrf = csrf.group(1)

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, headers=self.headers, **kw)

    def post(self, url: str, data: dict[str, str], **kw: Any) -> Any:
        return self.client.post(url, headers=self.headers, data={**data, "csrf": self.csrf}, **kw)


def test_web_form_refuses_without_identity_beside_each_field(service: Service) -> None:
    client = _Browser(service)
    if client:
        mrn = _mrn()
        form = {"mrn": mrn, "sex": "", "regions": "low_back"}
        r = client.post("/app/patients/new", data=form)
        assert r.status_code == 422
        for name in ("family_name", "given_name", "birth_date", "sex"):
            assert f'id="err-{name}"' in r.text, name
        assert _count(service, mrn) == 0
        bad = {
            **form,
            "family_name": "Sm1th",
            "given_name": "Al",
            "birth_date": "2999-01-01",
            "sex": "male",
        }
        r = client.post("/app/patients/new", data=bad)
        assert r.status_code == 422 and 'id="err-family_name"' in r.text
        assert 'id="err-birth_date"' in r.text and "in the future" in r.text
        assert _count(service, mrn) == 0
        good = {**bad, "family_name": "Webform", "birth_date": "1970-02-03"}
        r = client.post("/app/patients/new", data=good, follow_redirects=False)
        assert r.status_code == 303, r.text[:500]
        assert _count(service, mrn) == 1
        episode = client.get(r.headers["location"].split("/assess")[0])
        assert episode.status_code == 200, episode.text[:300]
        assert "WEBFORM, Al" in episode.text and "DOB 1970-02-03" in episode.text
        assert f"MRN <strong>{mrn}</strong>" in episode.text
        found = client.get("/app/", params={"q": "webform al"})
        assert mrn in found.text
        by_dob = client.get("/app/", params={"q": "1970-02-03"})
        assert mrn in by_dob.text


# --------------------------------------------------------------------------- demo data
def test_demo_data_patients_have_synthetic_names_and_their_example_age(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    engine = database.make_engine(url)
    database.upgrade(engine)
    today = date(2026, 12, 8)
    factory = uow_factory(engine)
    demo.seed(
        factory,
        load_knowledge(),
        ROOT / "examples",
        today=today,
        now=datetime(2026, 12, 8, 9, tzinfo=UTC),
        development=True,
    )
    with factory() as uow:
        patients, total = uow.records.page(RecordQuery("patient"), Window(limit=50))
    assert total == 7
    for p in patients:
        d = p.current.data
        assert d["family_name"] in demo.DEMO_FAMILY_NAMES and d["given_name"]
        assert d["birth_date"] and d["birth_year"] == int(d["birth_date"][:4])
    engine.dispose()


# --------------------------------------------------------------------------- migration
def _legacy_patient(conn: sa.Connection) -> uuid.UUID:
    """A patient as stored before 0006 (MRN and sex, no names): 0005's test's own record."""
    session = _old_session(conn)
    r = sa.table("records", sa.column("id", sa.Uuid()), sa.column("patient_id", sa.Uuid()))
    found: uuid.UUID = conn.execute(sa.select(r.c.patient_id).where(r.c.id == session)).scalar_one()
    return found


def test_migration_0006_up_and_down_keeps_legacy_patients_readable(
    empty_url: str,  # noqa: F811 - the fixture imported above
) -> None:
    engine = database.make_engine(empty_url)
    try:
        database.upgrade(engine, "0005_record_integrity")
        with engine.begin() as conn:
            legacy = _legacy_patient(conn)
        database.upgrade(engine, "0006_patient_identity")
        assert database.current_revision(engine) == "0006_patient_identity"
        cols = {c["name"] for c in sa.inspect(engine).get_columns("records")}
        assert {"family_name", "given_name", "birth_date", "name_key"} <= cols
        factory = uow_factory(engine)
        with factory() as uow:
            rec = uow.records.get(legacy)
            assert rec is not None and rec.current.data["mrn"] == "M5"
            shown = banner_of(
                PatientData.model_validate(rec.current.data),
                [],
                load_knowledge(),
                as_of=date.today(),
            )
            assert shown.name == "name not recorded" and shown.identity_missing
            row = uow.records.page(RecordQuery("patient"), Window())[0]
            assert [r.id for r in row] == [legacy]
        with engine.connect() as conn:
            names = conn.execute(
                sa.select(orm.records.c.family_name, orm.records.c.name_key).where(
                    orm.records.c.id == legacy
                )
            ).one()
        assert tuple(names) == (None, None)  # never invented
        # a version with identity (a newer build), then down and up: the index is rebuilt
        with engine.begin() as conn:
            conn.execute(
                orm.record_versions.insert().values(
                    record_id=legacy,
                    version=2,
                    status="active",
                    data={
                        "mrn": "LEGACY-1",
                        "family_name": "Müller",
                        "given_name": "Jo",
                        "birth_date": "1950-04-01",
                        "birth_year": 1950,
                        "sex": "male",
                    },
                    recorded_at=datetime.now(UTC),
                    recorded_by="m5-nurse",
                    reason="identity added",
                )
            )
            conn.execute(
                orm.records.update().where(orm.records.c.id == legacy).values(current_version=2)
            )
        with engine.begin() as conn:
            command.downgrade(database.alembic_config(conn), "0005_record_integrity")
        cols = {c["name"] for c in sa.inspect(engine).get_columns("records")}
        assert not {"family_name", "given_name", "birth_date", "name_key"} & cols
        database.upgrade(engine)
        with engine.connect() as conn:
            got = conn.execute(
                sa.select(
                    orm.records.c.family_name, orm.records.c.birth_date, orm.records.c.name_key
                ).where(orm.records.c.id == legacy)
            ).one()
        assert tuple(got) == ("Müller", date(1950, 4, 1), "muller jo")
    finally:
        engine.dispose()


def test_age_is_computed_on_the_as_of_date() -> None:
    """Completed years: the day before the birthday one less; 29 February on 28 February."""
    assert age_on(date(1974, 5, 17), date(2026, 5, 16)) == 51
    assert age_on(date(1974, 5, 17), date(2026, 5, 17)) == 52
    assert age_on(date(2000, 2, 29), date(2026, 2, 28)) == 25
    assert age_on(date(2000, 2, 29), date(2026, 3, 1)) == 26


# --------------------------------------------------------------------------- banner
def test_the_banner_is_on_every_patient_screen_with_the_flags(service: Service) -> None:
    """Name, date of birth with age, MRN and the latest assessment's contraindication flags
    on every page about the patient (the anticoagulant of the apixaban example, S002.16)."""
    web = _Browser(service)
    p = service.patient(family_name="Bannerman", given_name="Flo", birth_date="1950-01-31")
    e = service.episode(p["id"])
    a = service.assessment(e["id"], "levator_scapulae_on_apixaban")
    s = service.session(e["id"])
    pages = [
        f"/app/patients/{p['id']}",
        f"/app/episodes/{e['id']}",
        f"/app/episodes/{e['id']}/assess",
        f"/app/assessments/{a['id']}",
        f"/app/assessments/{a['id']}/plan",
        f"/app/episodes/{e['id']}/course",
        f"/app/episodes/{e['id']}/outcomes/new",
        f"/app/episodes/{e['id']}/sessions/new",
        f"/app/sessions/{s['id']}",
    ]
    for url in pages:
        r = web.get(url)
        assert r.status_code == 200, (url, r.text[:300])
        banner = r.text.split('<section class="patient-banner', 1)[1].split("</section>", 1)[0]
        assert "BANNERMAN, Flo" in banner, url
        assert "DOB 1950-01-31" in banner and f"MRN <strong>{p['data']['mrn']}</strong>" in banner
        assert "Anticoagulant use" in banner, url
    legacy_free = web.get("/app/", params={"q": "bannerman"})
    assert "BANNERMAN, Flo" in legacy_free.text and "1950-01-31" in legacy_free.text


def test_banner_flags_absolute_and_relative_contraindications() -> None:
    """An absolute contraindication (a reason) and a relative one (a caution) both flag."""
    from triggerpath.domain.engine import assess
    from triggerpath.domain.validation import parse_assessment
    from triggerpath.services.banner import contraindication_flags

    from ..conftest import example

    kb = load_knowledge()
    for name, flag in (("bleeding_disorder", "bleeding_disorder"), ("warfarin", "anticoagulant")):
        rec = assess(parse_assessment(example(name), kb), kb, as_of=date(2026, 11, 21))
        found = contraindication_flags(rec.model_dump(mode="json"), kb)
        assert flag in [f.code for f in found], (name, found)
