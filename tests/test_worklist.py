"""The worklist's pure rule (domain/worklist.py), no database.

The reassessment window comes from the knowledge data (``instruments.yaml: reassessment``),
which is S003.12 ("Mid/upper back trigger points: stepped treatment and follow-up": review
after 2-4 weeks of initial treatment): due on days 14-28 after the first session, overdue
from day 29, upcoming before day 14. The course limit is S000.20 (chronic: 2-8 sessions).
"""

from __future__ import annotations

from datetime import date, timedelta
from uuid import uuid4

import pytest

from triggerpath.domain.assessment import Assessment
from triggerpath.domain.episode import Episode, Session
from triggerpath.domain.worklist import EpisodeFacts, OpenRecord, build_worklist, select
from triggerpath.knowledge.loader import Knowledge

from .conftest import example

FIRST = date(2026, 3, 2)


def _facts(sessions: int = 1, **extra: object) -> EpisodeFacts:
    course = Episode(
        assessment=Assessment.model_validate(example("ql_chronic_low_back")),
        sessions=[Session(date=FIRST + timedelta(days=i), pre_nrs=6) for i in range(sessions)],
    )
    values: dict[str, object] = {
        "patient_id": uuid4(),
        "mrn": "W-1",
        "episode_id": uuid4(),
        "opened_by": "dr.a",
        "course": course,
        "assessed_by": "dr.a",
        "assessed_on": [FIRST - timedelta(days=1)],
        **extra,
    }
    return EpisodeFacts(**values)  # type: ignore[arg-type]


def test_the_window_is_the_knowledge_bases_s003_12(kb: Knowledge) -> None:
    ra = kb.instruments.reassessment
    assert (ra.weeks_min, ra.weeks_max) == (2, 4) and "S003.12" in ra.statement_ids


@pytest.mark.parametrize(
    ("day", "kind"),
    [
        (13, "reassessment_upcoming"),
        (14, "reassessment_due"),
        (28, "reassessment_due"),
        (29, "reassessment_overdue"),
        (60, "reassessment_overdue"),
    ],
)
def test_reassessment_boundaries(kb: Knowledge, day: int, kind: str) -> None:
    wl = build_worklist([_facts()], kb, as_of=FIRST + timedelta(days=day))
    assert [i.kind for i in wl.items if i.kind.startswith("reassessment")] == [kind]


def test_upcoming_only_within_the_due_window(kb: Knowledge) -> None:
    wl = build_worklist([_facts()], kb, as_of=FIRST + timedelta(days=10))
    assert select(wl).items == []
    assert [i.kind for i in select(wl, within_days=3).items] == []  # opens on day 14
    assert [i.kind for i in select(wl, within_days=4).items] == ["reassessment_upcoming"]


def test_beyond_the_course_limit_until_an_assessment_after_it(kb: Knowledge) -> None:
    as_of = FIRST + timedelta(days=9)
    over = build_worklist([_facts(sessions=9)], kb, as_of=as_of)
    assert "beyond_course_limit" in {i.kind for i in over.items}
    at_limit = build_worklist([_facts(sessions=8)], kb, as_of=as_of)
    assert "beyond_course_limit" not in {i.kind for i in at_limit.items}
    reassessed = _facts(sessions=9, assessed_on=[FIRST + timedelta(days=8)])
    done = build_worklist([reassessed], kb, as_of=as_of)
    assert "beyond_course_limit" not in {i.kind for i in done.items}


def test_records_unsigned_unattested_stale_and_planned(kb: Knowledge) -> None:
    day = FIRST + timedelta(days=3)
    recs = [
        OpenRecord("assessment", uuid4(), 1, "dr.a", FIRST, signed=False),
        OpenRecord("assessment", uuid4(), 2, "dr.a", FIRST, signed=True),
        OpenRecord("plan", uuid4(), 1, "dr.a", FIRST, planned_for=day),
        OpenRecord("plan", uuid4(), 2, "dr.a", FIRST, stale=True, signed=True),
        OpenRecord("session", uuid4(), 1, "dr.b", FIRST, unattested=True),
    ]
    wl = build_worklist([_facts(records=recs)], kb, as_of=day)
    kinds = sorted(i.kind for i in wl.items if i.record_kind != "episode")
    assert kinds == ["awaiting_attestation", "draft", "session_today", "unsigned", "unsigned"]
    due_now = [i for i in wl.items if i.kind != "reassessment_upcoming"]
    assert wl.counts["unsigned"] == 2 and wl.counts["total"] == len(due_now)
    mine = select(wl, username="dr.b")
    assert [i.kind for i in mine.items] == ["awaiting_attestation"]
    by_kind = select(wl, sort="kind").items
    assert [i.label for i in by_kind] == sorted(i.label for i in by_kind)
