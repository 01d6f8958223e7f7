"""The card builder: one call per card, every card with the same uuid, source, links and trace.

Cards are built as plain JSON (the hot path); the tests check each against ``Card``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from triggerpath.knowledge.loader import Knowledge
from triggerpath.services.cds._drafts import TpiOrder
from triggerpath.services.cds._model import (
    CARD_NS,
    ESI_CERVICAL_THORACIC,
    ESI_LUMBAR,
    ORDERS_KEY,
    OVERRIDE_CODINGS,
    TOPIC_SYSTEM,
    TRACE_KEY,
    Action,
    CdsOptions,
    Indicator,
    summary_text,
)
from triggerpath.services.cds._ports import EvidenceItem, Fhir, Record

#: A suggestion to offer: label, its actions, recommended or not.
SuggestionSpec = tuple[str, Sequence[Action], bool]
LOW_BACK = frozenset({"low_back", "pelvic_girdle"})


def card_uuid(hook_instance: str, code: str, orders: Sequence[TpiOrder]) -> str:
    """Deterministic: the same hook instance, card and orders give the same uuid."""
    return str(uuid.uuid5(CARD_NS, "|".join([hook_instance, code, *(o.reference for o in orders)])))


def evidence_json(evidence: Iterable[EvidenceItem]) -> list[dict[str, str]]:
    """The EHR records behind a card, for its trace."""
    out = []
    for e in evidence:
        item = {"reference": e.reference, "code": e.code, "display": e.display}
        item["valueset"] = e.valueset
        if e.when:
            item["when"] = e.when
        out.append(item)
    return out


@dataclass(frozen=True)
class CardText:
    """What a card says: topic code and title, summary, indicator, detail and sources."""

    code: str
    title: str
    summary: str
    indicator: Indicator
    detail_lines: Sequence[str]
    statement_ids: Sequence[str]


@dataclass(frozen=True)
class Why:
    """Why a card was issued, for its trace: the rule, verdict, records and inputs."""

    rule: str
    verdict: str | None = None
    evidence: Iterable[EvidenceItem] = ()
    inputs: Sequence[str] = ()
    extra: Mapping[str, Any] | None = None


@dataclass
class Cards:
    """Collects the cards of one hook call."""

    hook: str
    hook_instance: str
    snap: Record
    kb: Knowledge
    options: CdsOptions
    fhir: Fhir
    orders: Sequence[TpiOrder] = ()
    regions_screened_all: bool = False
    cards: list[dict[str, Any]] = field(default_factory=list)

    def add(self, text: CardText, why: Why, suggestions: Sequence[SuggestionSpec] = ()) -> None:
        """Add a card with its detail, source, override reasons, links and trace."""
        card_id = card_uuid(self.hook_instance, text.code, self.orders)
        card: dict[str, Any] = {
            "uuid": card_id,
            "summary": summary_text(text.summary),
            "detail": "\n\n".join(self._detail(text)),
            "indicator": text.indicator,
            "source": self._source(text),
        }
        if suggestions:
            card["suggestions"] = _suggestions(card_id, suggestions)
            card["selectionBehavior"] = "at-most-one"
        card["overrideReasons"] = [dict(c) for c in OVERRIDE_CODINGS]
        url = self.options.patient_url(self.snap.patient_id)
        if url:
            card["links"] = [{"label": "Open in TriggerPath", "url": url, "type": "absolute"}]
        card["extension"] = self._extension(text, why)
        self.cards.append(card)

    def _detail(self, text: CardText) -> list[str]:
        """The detail paragraphs: the card's lines, its draft orders, its sources."""
        lines = [line for line in text.detail_lines if line]
        if self.orders:
            named = ", ".join(f"{o.text} ({o.reference})" for o in self.orders)
            lines.append(f"Draft order(s): {named}")
        sources = ", ".join(dict.fromkeys(text.statement_ids)) or "none"
        lines.append(
            f"Sources: {sources} · TriggerPath knowledge {self.kb.version}. "
            "Decision support for the treating clinician, who decides."
        )
        return lines

    def _source(self, text: CardText) -> dict[str, Any]:
        """``source``: TriggerPath, the card's topic and the knowledge version."""
        topic = {"system": TOPIC_SYSTEM, "code": text.code, "display": text.title}
        topic["version"] = self.kb.version
        source: dict[str, Any] = {"label": "TriggerPath", "topic": topic}
        if self.options.source_url:
            source["url"] = self.options.source_url
        return source

    def _extension(self, text: CardText, why: Why) -> dict[str, Any]:
        """The evaluation trace, and the draft orders the card concerns."""
        trace: dict[str, Any] = {
            "rule": why.rule,
            "hook": self.hook,
            "hookInstance": self.hook_instance,
            "knowledgeVersion": self.kb.version,
            "asOf": self.snap.as_of.isoformat(),
            "statementIds": list(dict.fromkeys(text.statement_ids)),
            "evidence": evidence_json(why.evidence),
            "inputs": list(why.inputs),
            "missing": [f"{m.field}: {m.why}" for m in self.snap.missing],
        }
        if why.verdict:
            trace["verdict"] = why.verdict
        if self.regions_screened_all:
            trace["regionsScreened"] = "all (the record codes no pain site)"
        trace.update(why.extra or {})
        extension: dict[str, Any] = {TRACE_KEY: trace}
        if self.orders:
            extension[ORDERS_KEY] = [o.reference for o in self.orders]
        return extension

    def delete_orders(self) -> list[Action]:
        """Actions removing the TPI draft orders."""
        return [
            Action(
                type="delete",
                description=f"Remove the draft order {o.reference}",
                resourceId=o.reference,
            )
            for o in self.orders
        ]

    def referral(self, vs_id: str, reason: str, statement_ids: Sequence[str]) -> Action:
        """An action creating a draft referral coded from a value set."""
        code, coded = _referral_code(vs_id, self.snap.regions)
        resource = self.fhir.referral_request(
            self.kb,
            vs_id,
            patient_id=self.snap.patient_id or "unknown",
            now=self.snap.now,
            reason=reason,
            statement_ids=statement_ids,
            resource_id=str(uuid.uuid5(CARD_NS, f"{self.hook_instance}|{vs_id}")),
            code=code,
            coded=coded,
            validate=False,
        )
        description = f"Create a referral: {self.kb.valuesets.get(vs_id).name}"
        return Action(type="create", description=description, resource=resource)


def _referral_code(vs_id: str, coded_regions: Sequence[str]) -> tuple[str | None, bool]:
    """An epidural referral's CPT follows the coded pain site; unclear sites get no code."""
    if vs_id != "epidural_steroid_injection":
        return None, True
    regions = set(coded_regions)
    if regions & LOW_BACK and not regions - LOW_BACK:
        return ESI_LUMBAR, True
    if regions and not regions & LOW_BACK:
        return ESI_CERVICAL_THORACIC, True
    return None, False


def _suggestions(card_id: str, specs: Sequence[SuggestionSpec]) -> list[dict[str, Any]]:
    """CDS Hooks suggestions with uuids derived from the card's."""
    out = []
    for label, actions, recommended in specs:
        item: dict[str, Any] = {"label": label, "uuid": str(uuid.uuid5(uuid.UUID(card_id), label))}
        if recommended:
            item["isRecommended"] = True
        item["actions"] = [a.model_dump(mode="json", exclude_none=True) for a in actions]
        out.append(item)
    return out
