"""The record-integrity data (``data/integrity.yaml``): plausibility bounds and ranges.

Kept as its own small, validated file so the safety kernel's bounds are data with a
version, like every other clinical number, and can be reviewed without reading code.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from triggerpath.errors import FieldProblem, KnowledgeError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SessionBounds(_Strict):
    max_sites: int = Field(ge=1, le=200)
    max_multiple_of_agent_max: int = Field(ge=1, le=20)
    min_exceedance_reason_chars: int = Field(ge=1, le=200)
    ledger_hours: int = Field(ge=1, le=168)
    other_agents: list[str]
    exceedance_statement_ids: list[str] = Field(min_length=1)


class PlanBounds(_Strict):
    max_sites: int = Field(ge=1, le=200)


class DateBounds(_Strict):
    default_clock_skew_minutes: int = Field(ge=0, le=120)


class TextBounds(_Strict):
    max_free_text_chars: int = Field(ge=1, le=100_000)


class Measure(_Strict):
    """A follow-up number that is not a questionnaire score (relief days, yes/no flags)."""

    id: str
    name: str
    min: float
    max: float
    integer: bool


class Integrity(_Strict):
    version: str
    session: SessionBounds
    plan: PlanBounds
    dates: DateBounds
    text: TextBounds
    follow_up_measures: list[Measure]
    integer_instruments: list[str]

    def measure(self, measure_id: str) -> Measure | None:
        return next((m for m in self.follow_up_measures if m.id == measure_id), None)


@cache
def load_integrity() -> Integrity:
    """Load and validate ``integrity.yaml`` (cached: it is immutable)."""
    text = resources.files("triggerpath.knowledge.data").joinpath("integrity.yaml")
    try:
        return Integrity.model_validate(yaml.safe_load(text.read_text(encoding="utf-8")))
    except ValidationError as exc:
        raise KnowledgeError(
            [
                FieldProblem(f"integrity.yaml:{'.'.join(map(str, e['loc']))}", e["msg"])
                for e in exc.errors()
            ]
        ) from None
