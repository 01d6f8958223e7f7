"""Clinic policy: the switches a clinic may set, kept apart from clinical content.

The knowledge base says what the sources say; the policy says how this clinic
applies it where the sources leave room (for example how long a conservative
trial must last before it counts as tried). Defaults are the conservative
reading of the sources and are named in each field's description.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_conservative_trial_weeks: float = Field(
        default=2.0,
        ge=0,
        le=52,
        description=(
            "Weeks a conservative treatment must have run before an inadequate response counts "
            "as a failed trial. Default 2: the earliest reassessment point of S003.12 (2-4 weeks)."
        ),
    )


DEFAULT_POLICY = Policy()
