"""The shipped examples read like a clinician's review list: each has its expected verdict."""

from __future__ import annotations

import json
from typing import get_args

import pytest

from triggerpath.domain.engine import assess
from triggerpath.domain.recommendation import Verdict
from triggerpath.domain.validation import parse_assessment
from triggerpath.knowledge import Knowledge
from triggerpath.knowledge.schema import RedirectCode

from .conftest import AS_OF, EXAMPLES

EXPECTED = json.loads((EXAMPLES / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_reaches_its_expected_verdict(name: str, kb: Knowledge) -> None:
    data = json.loads((EXAMPLES / f"{name}.json").read_text())
    rec = assess(parse_assessment(data, kb), kb, as_of=AS_OF)
    want = EXPECTED[name]
    assert rec.verdict == want["verdict"], [r.text for r in rec.reasons]
    assert rec.redirect == want["redirect"]


def test_examples_reach_every_verdict_and_every_redirect() -> None:
    assert len(EXPECTED) >= 12
    assert {e["verdict"] for e in EXPECTED.values()} == set(get_args(Verdict))
    assert {e["redirect"] for e in EXPECTED.values()} - {None} == set(get_args(RedirectCode))


def test_every_example_file_has_an_expectation() -> None:
    files = {p.stem for p in EXAMPLES.glob("*.json")} - {"expected"}
    assert files == set(EXPECTED)
