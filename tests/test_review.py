"""Clinical review status of the knowledge (knowledge/data/review.yaml, issue 11 §7)."""

from __future__ import annotations

import json
from datetime import date

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from triggerpath.adapters import documents as docs
from triggerpath.domain.assessment import Assessment
from triggerpath.domain.planning import Injectate, Target, plan_procedure
from triggerpath.entrypoints.cli import app
from triggerpath.knowledge import Knowledge
from triggerpath.knowledge.review import (
    NOTICE,
    Review,
    ReviewLog,
    check_review,
    item_ids,
    review_of,
)

from .conftest import AS_OF, example


def test_every_knowledge_item_has_a_review_status(kb: Knowledge) -> None:
    log = review_of(kb)
    ids = item_ids(kb)
    assert set(log.items) == set(ids)
    # the kinds the issue names are all there
    for prefix in ("dose_limit.", "technique_card.", "rule.red_flag.", "instrument."):
        assert any(i.startswith(prefix) for i in ids), prefix
    assert list(check_review(log, kb)) == []
    broken = ReviewLog(items={**log.items, "technique_card.no_such_muscle": log.items[ids[0]]})
    del broken.items[ids[0]]
    problems = {p.field: p.reason for p in check_review(broken, kb)}
    assert problems == {
        f"review.yaml:items.{ids[0]}": "no review status for this knowledge item",
        "review.yaml:items.technique_card.no_such_muscle": "names no knowledge item",
    }


def test_a_review_needs_role_and_date() -> None:
    with pytest.raises(ValidationError, match="reviewer_role and date"):
        Review(status="reviewed", reviewer_role="consultant anaesthetist")
    ok = Review(status="reviewed", reviewer_role="consultant anaesthetist", date=date(2026, 12, 1))
    log = ReviewLog(items={"a": ok, "b": Review(status="not_reviewed")})
    assert log.pending() == ["b"]
    assert log.notice(["a"]) is None
    assert log.notice(["a", "b"]) == f"{NOTICE}: b."


def test_documents_say_content_not_yet_reviewed(kb: Knowledge) -> None:
    a = Assessment.model_validate(example("ql_chronic_low_back"))
    plan = plan_procedure(
        a,
        [Target(muscle="quadratus_lumborum", side="left", sites=1)],
        Injectate.model_validate({"solutions": [{"agent": "lidocaine", "percent": 1}]}),
        as_of=AS_OF,
        knowledge=kb,
    )
    doc = docs.consent_form(plan, kb, docs.PatientLine("T-1", "female", 50, 70), on=AS_OF)
    assert doc.html.count(NOTICE) == 1
    assert "technique_card.quadratus_lumborum" in doc.html


def test_review_status_command_lists_what_awaits_review(kb: Knowledge) -> None:
    res = CliRunner().invoke(app, ["knowledge", "review-status", "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert sorted(data["pending"]) == sorted(review_of(kb).pending())
    assert "dose_limit.lidocaine" in data["pending"]
    text = CliRunner().invoke(app, ["knowledge", "review-status"]).output
    assert f"{len(data['pending'])} of {data['items']} items await clinical review" in text
