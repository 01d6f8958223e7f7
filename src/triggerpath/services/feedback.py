"""CDS Hooks feedback: the cards TriggerPath issued and what clinicians did with them.

The port (:class:`FeedbackStore`) and its records live here, in the service layer, so that
the HTTP router (``entrypoints/api/cds_hooks.py``) and the database adapter
(``adapters/cds_feedback.py``) both depend on it rather than on each other.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class IssuedCard:
    """A card TriggerPath returned, kept so feedback can be tied to it and its trace."""

    uuid: str
    service_id: str
    hook_instance: str
    patient_id: str | None
    code: str
    indicator: str
    summary: str
    suggestion_ids: tuple[str, ...]
    draft_orders: tuple[str, ...]
    trace: Mapping[str, Any]
    issued_at: datetime
    client: str


@dataclass(frozen=True)
class FeedbackRecord:
    service_id: str
    card: str
    outcome: Literal["accepted", "overridden"]
    outcome_timestamp: datetime
    received_at: datetime
    client: str
    accepted_suggestions: tuple[str, ...] = ()
    override_system: str | None = None
    override_code: str | None = None
    override_display: str | None = None
    user_comment: str | None = None
    card_code: str | None = None  # the card's topic when TriggerPath issued it
    card_known: bool = False


class FeedbackStore(Protocol):
    """Where issued cards and their feedback go (in memory here; the lead adds a DB one)."""

    def record_cards(self, cards: Sequence[IssuedCard]) -> None: ...

    def card(self, card_uuid: str) -> IssuedCard | None: ...

    def add_feedback(self, records: Sequence[FeedbackRecord]) -> None: ...

    def feedback(self, card_uuid: str | None = None) -> list[FeedbackRecord]: ...


class InMemoryFeedbackStore:
    """Bounded, thread-safe, process-local store (the oldest cards are dropped first)."""

    def __init__(self, max_cards: int = 50_000, max_feedback: int = 100_000) -> None:
        self._cards: OrderedDict[str, IssuedCard] = OrderedDict()
        self._feedback: list[FeedbackRecord] = []
        self._max_cards = max_cards
        self._max_feedback = max_feedback
        self._lock = threading.Lock()

    def record_cards(self, cards: Sequence[IssuedCard]) -> None:
        with self._lock:
            for c in cards:
                self._cards[c.uuid] = c
                self._cards.move_to_end(c.uuid)
            while len(self._cards) > self._max_cards:
                self._cards.popitem(last=False)

    def card(self, card_uuid: str) -> IssuedCard | None:
        with self._lock:
            return self._cards.get(card_uuid)

    def add_feedback(self, records: Sequence[FeedbackRecord]) -> None:
        with self._lock:
            self._feedback.extend(records)
            del self._feedback[: max(0, len(self._feedback) - self._max_feedback)]

    def feedback(self, card_uuid: str | None = None) -> list[FeedbackRecord]:
        with self._lock:
            return [f for f in self._feedback if card_uuid is None or f.card == card_uuid]


# --------------------------------------------------------------------------- authentication
