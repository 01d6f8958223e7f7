"""Diagnosis and guidance codes for the procedure note (``data/procedure_coding.yaml``).

The code list is knowledge, so it lives as versioned data with its source named (ICD-10-CM
FY2025, CDC NCHS; CPT 2025, AMA) and is validated when first read: a malformed code is a
:class:`~triggerpath.errors.KnowledgeError` naming the entry, never a silently wrong bill.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from pydantic import Field, field_validator

from triggerpath.knowledge.base import Strict
from triggerpath.knowledge.datafile import validated
from triggerpath.knowledge.schema import Region

FILE = "procedure_coding.yaml"
ICD10CM = re.compile(r"^[A-Z]\d{2}(\.[0-9A-Z]{1,4})?$")


class CodeSystemRef(Strict):
    name: str
    version: str
    source: str


class Diagnosis(Strict):
    code: str
    display: str = Field(min_length=3)
    when_regions: list[Region] = Field(
        default_factory=list, description="add only for these regions; empty = always"
    )

    @field_validator("code")
    @classmethod
    def _icd(cls, v: str) -> str:
        if not ICD10CM.match(v):
            raise ValueError(f"{v!r} is not an ICD-10-CM code")
        return v


class GuidanceCode(Strict):
    guidance: str
    code: str = Field(pattern=r"^\d{5}$")
    display: str = Field(min_length=3)


class Coding(Strict):
    diagnosis_system: CodeSystemRef
    procedure_system: CodeSystemRef
    diagnoses: list[Diagnosis] = Field(min_length=1)
    guidance: list[GuidanceCode] = Field(default_factory=list)

    def diagnoses_for(self, regions: Iterable[str]) -> list[Diagnosis]:
        have = set(regions)
        return [d for d in self.diagnoses if not d.when_regions or have & set(d.when_regions)]

    def guidance_code(self, guidance: str | None) -> GuidanceCode | None:
        if not guidance:
            return None
        return next((g for g in self.guidance if guidance.startswith(g.guidance)), None)


@cache
def load_coding() -> Coding:
    """The packaged code list, validated (cached: it is immutable)."""
    return validated(FILE, Coding)
