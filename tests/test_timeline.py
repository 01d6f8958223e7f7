"""Follow-ups belong to the right session (issue 11 §4): the pure placement rule and the
course built from stored records with it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from triggerpath.domain.assessment import Assessment
from triggerpath.domain.course import evaluate_course
from triggerpath.domain.engine import assess
from triggerpath.domain.policy import DEFAULT_POLICY
from triggerpath.domain.timeline import OutcomeTime, Placement, SessionTime, assign, place
from triggerpath.knowledge import Knowledge
from triggerpath.services.episodes import Bundle, course_episode, trend
from triggerpath.services.model import Kind, Record, Version
from triggerpath.services.payloads import AssessmentData, OutcomeData, SessionData

from .conftest import example

D = date(2026, 11, 2)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


S1 = SessionTime("s1", at(D, 9))
S2 = SessionTime("s2", at(D + timedelta(days=14), 9))


# --------------------------------------------------------------------------- pure rule
def test_same_day_follow_up_after_the_session_is_its_follow_up() -> None:
    o = OutcomeTime("o", D, session="s1", at=at(D, 11))
    assert place([S1, S2], o) == Placement("s1", "after")


def test_same_day_score_recorded_before_the_session_is_its_baseline() -> None:
    o = OutcomeTime("o", D, session="s1", at=at(D, 8, 30))
    assert place([S1, S2], o) == Placement("s1", "before")


def test_next_day_follow_up_is_after() -> None:
    o = OutcomeTime("o", D + timedelta(days=1), session="s1", at=at(D + timedelta(days=5), 10))
    assert place([S1, S2], o) == Placement("s1", "after")


def test_unlinked_follow_up_between_two_sessions_goes_to_the_earlier_one() -> None:
    o = OutcomeTime("o", D + timedelta(days=7), at=at(D + timedelta(days=7), 10))
    assert place([S1, S2], o) == Placement("s1", "after")
    baseline = OutcomeTime("b", D + timedelta(days=7), relation="before")
    assert place([S1, S2], baseline) == Placement("s2", "before")


def test_two_sessions_on_one_day_split_by_time() -> None:
    morning, afternoon = SessionTime("am", at(D, 9)), SessionTime("pm", at(D, 15))
    noon = OutcomeTime("noon", D, at=at(D, 12))
    evening = OutcomeTime("eve", D, at=at(D, 18))
    early = OutcomeTime("early", D, at=at(D, 7))
    placed = assign([afternoon, morning], [noon, evening, early])
    assert placed == {
        "noon": Placement("am", "after"),
        "eve": Placement("pm", "after"),
        "early": Placement("am", "before"),
    }


def test_the_explicit_relation_from_the_form_wins_over_the_times() -> None:
    o = OutcomeTime("o", D, session="s1", relation="before", at=at(D, 17))
    assert place([S1], o) == Placement("s1", "before")
    assert place([], o) is None


# --------------------------------------------------------------------------- course
def _record(kind: Kind, data: dict[str, Any], created: datetime, rid: UUID | None = None) -> Record:
    version = Version(1, "active", data, created, "tester", None)
    return Record(rid or uuid4(), kind, uuid4(), None, created, "tester", version)


def _session(day: date, hour: int) -> Record:
    data = SessionData(
        performed_at=at(day, hour),
        operator="tester",
        sites=[
            {
                "muscle": "quadratus_lumborum",
                "side": "left",
                "agent": "lidocaine",
                "concentration_percent": 1,
                "volume_ml": 2,
            }
        ],
        complications=["none"],
    )
    return _record("session", data.model_dump(mode="json"), at(day, hour, 30))


def _outcome(
    session: Record, day: date, instrument: str, value: float, recorded: datetime, **kw: Any
) -> Record:
    data = OutcomeData(
        measured_on=day, instrument=instrument, value=value, session_id=session.id, **kw
    )
    return _record("outcome", data.model_dump(mode="json"), recorded)


@pytest.fixture
def base(kb: Knowledge) -> Bundle:
    a = Assessment.model_validate(example("ql_chronic_low_back"))
    result = assess(a, kb, as_of=D - timedelta(days=7), policy=DEFAULT_POLICY)
    data = AssessmentData(
        input=a,
        as_of=D - timedelta(days=7),
        result=result,
        knowledge_version=kb.version,
        policy=DEFAULT_POLICY,
        policy_version=0,
    )
    created = at(D - timedelta(days=7), 9)
    return Bundle(
        patient=_record("patient", {"mrn": "T-1", "sex": "female"}, created),
        episode=_record("episode", {"regions": ["low_back"]}, created),
        assessments=[_record("assessment", data.model_dump(mode="json"), created)],
    )


def _flags(s: Record, day: date, recorded: datetime, **kw: Any) -> list[Record]:
    return [
        _outcome(s, day, "physical_therapy", 1, recorded, **kw),
        _outcome(s, day, "home_exercise", 1, recorded, **kw),
    ]


def test_course_same_day_follow_up_is_not_the_next_sessions_baseline(
    base: Bundle, kb: Knowledge
) -> None:
    """Session 1 (pre 7), a same-day follow-up entered after it (NRS 2, PT and home exercise
    yes), session 2 two weeks later (pre 5): the follow-up is session 1's, session 2 keeps
    its own baseline and no 'without physical therapy' warning appears for session 1."""
    s1, s2 = _session(D, 9), _session(D + timedelta(days=14), 9)
    later = at(D, 16)
    base.sessions = [s1, s2]
    base.outcomes = [
        _outcome(s1, D, "nrs", 7, at(D, 9, 31), relation="before"),
        _outcome(s1, D, "nrs", 2, later),  # no relation: same day after the session -> after
        *_flags(s1, D, later),
        _outcome(
            s2,
            D + timedelta(days=14),
            "nrs",
            5,
            at(D + timedelta(days=14), 9, 31),
            relation="before",
        ),
        *_flags(s2, D + timedelta(days=14), at(D + timedelta(days=14), 9, 31), relation="before"),
    ]
    episode = course_episode(base, kb)
    assert episode is not None
    assert [(s.pre_nrs, s.post_nrs) for s in episode.sessions] == [(7, 2), (5, None)]
    assert episode.sessions[0].physical_therapy is True
    report = evaluate_course(episode, kb, as_of=D + timedelta(days=15))
    texts = " ".join(w.text for w in report.warnings)
    assert "without physical therapy" not in texts
    kinds = [p.kind for p in trend(base).series["nrs"]]
    assert kinds == ["pre", "follow-up", "pre"]


def test_course_next_day_follow_up_and_a_real_lack_of_therapy_is_warned(
    base: Bundle, kb: Knowledge
) -> None:
    s1 = _session(D, 9)
    nxt = D + timedelta(days=1)
    base.sessions = [s1]
    base.outcomes = [
        _outcome(s1, D, "nrs", 6, at(D, 9, 31), relation="before"),
        _outcome(s1, nxt, "nrs", 3, at(nxt, 10)),
        _outcome(s1, nxt, "physical_therapy", 0, at(nxt, 10)),
        _outcome(s1, nxt, "home_exercise", 0, at(nxt, 10)),
    ]
    episode = course_episode(base, kb)
    assert episode is not None
    assert [(s.pre_nrs, s.post_nrs) for s in episode.sessions] == [(6, 3)]
    report = evaluate_course(episode, kb, as_of=nxt)
    assert any("without physical therapy" in w.text for w in report.warnings)


def test_course_follow_up_between_two_sessions_belongs_to_the_first(
    base: Bundle, kb: Knowledge
) -> None:
    s1, s2 = _session(D, 9), _session(D + timedelta(days=14), 9)
    mid = D + timedelta(days=10)
    base.sessions = [s1, s2]
    base.outcomes = [
        _outcome(s1, D, "nrs", 8, at(D, 9, 31), relation="before"),
        _outcome(s1, mid, "nrs", 4, at(mid, 10), relation="after"),
    ]
    episode = course_episode(base, kb)
    assert episode is not None
    # session 2 has no baseline of its own: the last follow-up score stands in for it
    assert [(s.pre_nrs, s.post_nrs) for s in episode.sessions] == [(8, 4), (4, None)]
    assert episode.reassessments == [mid]


def test_course_two_sessions_on_one_day(base: Bundle, kb: Knowledge) -> None:
    am, pm = _session(D, 9), _session(D, 15)
    base.sessions = [am, pm]
    base.outcomes = [
        _outcome(am, D, "nrs", 7, at(D, 9, 31), relation="before"),
        _outcome(am, D, "nrs", 5, at(D, 12)),  # between the two: after the morning one
        _outcome(pm, D, "nrs", 6, at(D, 15, 31), relation="before"),
    ]
    episode = course_episode(base, kb)
    assert episode is not None
    assert [(s.pre_nrs, s.post_nrs) for s in episode.sessions] == [(7, 5), (6, None)]


def test_legacy_pre_scores_without_a_relation_are_read_by_their_note(
    base: Bundle, kb: Knowledge
) -> None:
    s1 = _session(D, 9)
    base.sessions = [s1]
    base.outcomes = [_outcome(s1, D, "nrs", 7, at(D, 9, 31), note="before the injection")]
    episode = course_episode(base, kb)
    assert episode is not None and episode.sessions[0].pre_nrs == 7


def test_web_timeline_shows_a_same_day_follow_up_after_its_session(base: Bundle) -> None:
    from triggerpath.entrypoints.web.views_patients import _timeline

    s1 = _session(D, 9)
    base.sessions = [s1]
    base.outcomes = [
        _outcome(s1, D, "nrs", 7, at(D, 9, 31), relation="before"),
        _outcome(s1, D, "nrs", 2, at(D, 16)),
    ]
    kinds = [e["kind"] for e in _timeline(base) if e["when"] == D.isoformat()]
    assert kinds == ["Outcomes", "TPI session", "Follow-up"]
