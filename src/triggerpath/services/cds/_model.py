"""The CDS Hooks 2.0 card model and the constants every card shares.

Cards are built as plain JSON on the hot path; :class:`Card` is the schema the tests
check every card against (and the one :func:`source_unavailable` builds through).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from triggerpath.services.ehr import Evidence

Hook = Literal["patient-view", "order-select", "order-sign"]
HOOKS: tuple[Hook, ...] = ("patient-view", "order-select", "order-sign")
Indicator = Literal["info", "warning", "critical"]

TRIGGERPATH_URI = "https://triggerpath.example/fhir"
TOPIC_SYSTEM = f"{TRIGGERPATH_URI}/CodeSystem/cds-card"
OVERRIDE_SYSTEM = f"{TRIGGERPATH_URI}/CodeSystem/cds-override-reason"
TRACE_KEY = "org.triggerpath.trace"
ORDERS_KEY = "org.triggerpath.draft-orders"
SUMMARY_MAX = 139  # the spec: under 140 characters
CARD_NS = uuid.UUID("0f7d2c52-8f1e-5b8a-9c3d-2e4f6a8b0c1d")

#: Reasons a clinician may give when overriding a card (CDS Hooks ``overrideReasons``).
OVERRIDE_REASONS: tuple[tuple[str, str], ...] = (
    ("benefit-outweighs-risk", "Benefit outweighs the risk; proceeding with precautions"),
    ("already-addressed", "Already addressed (e.g. prescriber agreed, INR checked)"),
    ("record-out-of-date", "The EHR record is wrong or out of date"),
    ("patient-informed-choice", "Discussed with the patient, who chose to proceed"),
)
OVERRIDE_CODINGS: tuple[dict[str, str], ...] = tuple(
    {"system": OVERRIDE_SYSTEM, "code": c, "display": d} for c, d in OVERRIDE_REASONS
)
#: CPT codes of the epidural_steroid_injection value set by spinal level (interlaminar, imaging).
ESI_LUMBAR, ESI_CERVICAL_THORACIC = "62323", "62321"
BLEEDING_CAUTIONS = frozenset({"anticoagulant", "antiplatelet"})
OTHER_SAFETY_CAUTIONS = frozenset({"latex_allergy", "preservative_allergy"})
EPINEPHRINE = re.compile(r"\b(epinephrine|epinephrin|adrenaline|epi)\b", re.IGNORECASE)


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Coding(_M):
    system: str
    code: str
    display: str
    version: str | None = None


class Source(_M):
    label: str
    url: str | None = None
    topic: Coding | None = None


class Link(_M):
    label: str
    url: str
    type: Literal["absolute", "smart"] = "absolute"


class Action(_M):
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None
    resourceId: str | None = None  # noqa: N815 - CDS Hooks field name


class Suggestion(_M):
    label: str
    uuid: str
    isRecommended: bool | None = None  # noqa: N815 - CDS Hooks field name
    actions: list[Action] = Field(min_length=1)


class Card(_M):
    uuid: str
    summary: str = Field(min_length=1, max_length=SUMMARY_MAX)
    detail: str | None = None
    indicator: Indicator
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None  # noqa: N815
    overrideReasons: list[Coding] | None = None  # noqa: N815
    links: list[Link] | None = None
    extension: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = self.model_dump(mode="json", exclude_none=True)
        return out


#: An EHR record behind a card that the cards name themselves (a course's TPIs, a drug):
#: the same coded evidence the record reader gives (:class:`triggerpath.services.ehr.Evidence`).
TraceEvidence = Evidence


@dataclass(frozen=True)
class CdsOptions:
    """Where the cards point: the TriggerPath web view (absolute base URL)."""

    web_base_url: str = ""
    source_url: str | None = None

    def patient_url(self, patient_id: str | None) -> str | None:
        """The web view of the patient, or None without a base URL or a patient id."""
        if not patient_id or not self.web_base_url:
            return None
        return f"{self.web_base_url.rstrip('/')}/patients/{patient_id}"


def summary_text(text: str) -> str:
    """One line under 140 characters (cut with an ellipsis)."""
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1].rstrip() + "…"


def ids(statement_ids: Any) -> str:
    """`` (S000.28, S000.29)`` after a sentence: the statements it rests on, once each."""
    unique = list(dict.fromkeys(statement_ids))
    return f" ({', '.join(unique)})" if unique else ""


#: Cards without links to the web view (the default when no base URL is known).
NO_LINKS = CdsOptions()
