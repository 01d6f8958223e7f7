"""The record-integrity data (``data/integrity.yaml``): plausibility bounds and ranges.

Kept as its own small, validated file so the safety kernel's bounds are data with a
version, like every other clinical number, and can be reviewed without reading code.
"""

from __future__ import annotations

from functools import cache

from pydantic import Field

from triggerpath.knowledge.base import Strict, find
from triggerpath.knowledge.datafile import validated


class SessionBounds(Strict):
    max_sites: int = Field(ge=1, le=200)
    max_multiple_of_agent_max: int = Field(ge=1, le=20)
    min_exceedance_reason_chars: int = Field(ge=1, le=200)
    ledger_hours: int = Field(ge=1, le=168)
    other_agents: list[str]
    exceedance_statement_ids: list[str] = Field(min_length=1)


class PlanBounds(Strict):
    max_sites: int = Field(ge=1, le=200)


class DateBounds(Strict):
    default_clock_skew_minutes: int = Field(ge=0, le=120)


class TextBounds(Strict):
    max_free_text_chars: int = Field(ge=1, le=100_000)


class Measure(Strict):
    """A follow-up number that is not a questionnaire score (relief days, yes/no flags)."""

    id: str
    name: str
    min: float
    max: float
    integer: bool


class Integrity(Strict):
    version: str
    session: SessionBounds
    plan: PlanBounds
    dates: DateBounds
    text: TextBounds
    follow_up_measures: list[Measure]
    integer_instruments: list[str]

    def measure(self, measure_id: str) -> Measure | None:
        return find(self.follow_up_measures, measure_id)


@cache
def load_integrity() -> Integrity:
    """Load and validate ``integrity.yaml`` (cached: it is immutable)."""
    return validated("integrity.yaml", Integrity)
