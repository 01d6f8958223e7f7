"""CDS Hooks feedback: the cards TriggerPath issued and what clinicians did with them.

The ports live here, in the service layer, so that the HTTP router
(``entrypoints/api/cds_hooks.py``) and the database adapter (``adapters/cds_feedback.py``)
both depend on them rather than on each other:

- :class:`FeedbackStore`: issued cards (with their trace) and the feedback on them;
- :class:`HookCallStore`: the answer given to each (client, service, hookInstance), so the
  same call sent again answers the same cards (idempotent, never a unique-key 500);
- :class:`ReplayStore`: the ``jti`` of every signed call until it expires, shared by all
  workers, so a replayed token is refused by whichever worker it reaches.

:class:`WriteBehind` takes the card and answer writes off the request's hot path: they are
queued and written in batches by one thread, read back from the queue until written, and
flushed at shutdown, so none is lost when the server stops.
"""

from __future__ import annotations

import logging
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


@dataclass(frozen=True)
class HookCall:
    """The answer given to one hook call, kept so a repeated ``hookInstance`` gets it again."""

    client: str
    service_id: str
    hook_instance: str
    request_digest: str
    response: bytes
    created_at: datetime


@dataclass(frozen=True)
class Admission:
    """A signed hook call at the door: its token's jti (kept until ``expires_at``) to
    claim, and the (client = issuer, service, hookInstance) whose answer to look up."""

    issuer: str
    jti: str
    expires_at: datetime
    now: datetime
    service_id: str
    hook_instance: str


class HookCallStore(Protocol):
    """Answers by (client, service, hookInstance); the first answer recorded is kept."""

    def record_calls(self, calls: Sequence[HookCall]) -> None: ...

    def hook_call(self, client: str, service_id: str, hook_instance: str) -> HookCall | None: ...


class ReplayStore(Protocol):
    """Signed-call token ids, shared by every worker of the service."""

    def claim(self, issuer: str, jti: str, expires_at: datetime, now: datetime) -> bool:
        """Record the jti; False when it was already used (and has not expired)."""
        ...


class CdsStore(FeedbackStore, HookCallStore, ReplayStore, Protocol):
    """Everything the CDS router keeps (the database adapter implements all of it)."""

    def admit(self, a: Admission) -> tuple[bool, HookCall | None]:
        """``claim`` and ``hook_call`` (client = issuer) in one round trip: the hook call's
        only database statement on the request path."""
        ...


class InMemoryFeedbackStore:
    """Bounded, thread-safe, process-local store (the oldest cards are dropped first).

    For tests and one-process development: its replay store does not span workers.
    """

    def __init__(self, max_cards: int = 50_000, max_feedback: int = 100_000) -> None:
        self._cards: OrderedDict[str, IssuedCard] = OrderedDict()
        self._calls: OrderedDict[tuple[str, str, str], HookCall] = OrderedDict()
        self._jti: dict[tuple[str, str], datetime] = {}
        self._feedback: list[FeedbackRecord] = []
        self._max_cards = max_cards
        self._max_feedback = max_feedback
        self._lock = threading.Lock()

    def record_cards(self, cards: Sequence[IssuedCard]) -> None:
        with self._lock:
            for c in cards:
                self._cards.setdefault(c.uuid, c)  # the first issue is kept
                self._cards.move_to_end(c.uuid)
            while len(self._cards) > self._max_cards:
                self._cards.popitem(last=False)

    def record_calls(self, calls: Sequence[HookCall]) -> None:
        with self._lock:
            for c in calls:
                self._calls.setdefault((c.client, c.service_id, c.hook_instance), c)
            while len(self._calls) > self._max_cards:
                self._calls.popitem(last=False)

    def hook_call(self, client: str, service_id: str, hook_instance: str) -> HookCall | None:
        with self._lock:
            return self._calls.get((client, service_id, hook_instance))

    def claim(self, issuer: str, jti: str, expires_at: datetime, now: datetime) -> bool:
        with self._lock:
            for key in [k for k, exp in self._jti.items() if exp < now]:
                del self._jti[key]
            if (issuer, jti) in self._jti:
                return False
            self._jti[(issuer, jti)] = expires_at
            return True

    def admit(self, a: Admission) -> tuple[bool, HookCall | None]:
        claimed = self.claim(a.issuer, a.jti, a.expires_at, a.now)
        return claimed, self.hook_call(a.issuer, a.service_id, a.hook_instance)

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


log = logging.getLogger("triggerpath.cds")


class WriteBehind:
    """Card and answer writes queued off the hot path, written in batches by one thread.

    Reads (``card``, ``hook_call``) look in the queue first, so a card is known to feedback
    the moment it is issued; ``close`` writes what is left. A failed batch stays queued and
    is tried again (the queue is bounded by ``max_pending``, beyond which writes happen
    inline, so memory cannot grow without limit and nothing is dropped).
    """

    def __init__(self, store: CdsStore, *, interval: float = 0.05, max_pending: int = 20_000):
        self.store = store
        self._interval = interval
        self._max_pending = max_pending
        self._cards: dict[str, IssuedCard] = {}
        self._calls: dict[tuple[str, str, str], HookCall] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()  # started again after a close (an app restarted in-process)
            self._thread = threading.Thread(target=self._run, name="cds-write-behind", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush()

    def record(self, cards: Sequence[IssuedCard], call: HookCall | None) -> None:
        """Queue the cards and the answer of one hook call."""
        with self._lock:
            for c in cards:
                self._cards.setdefault(c.uuid, c)
            if call is not None:
                self._calls.setdefault((call.client, call.service_id, call.hook_instance), call)
            backlog = len(self._cards) + len(self._calls)
        if backlog > self._max_pending:
            self.flush()  # the writer is behind: write inline rather than grow
        else:
            self._start()

    def flush(self) -> None:
        """Write everything queued; on failure keep it queued for the next try."""
        with self._lock:
            cards, calls = list(self._cards.values()), list(self._calls.values())
        if not cards and not calls:
            return
        try:
            self.store.record_cards(cards)
            self.store.record_calls(calls)
        except Exception:  # a database hiccup: keep the batch and retry
            log.exception("CDS card write failed; %d card(s) kept for retry", len(cards))
            return
        with self._lock:
            for c in cards:
                self._cards.pop(c.uuid, None)
            for h in calls:
                self._calls.pop((h.client, h.service_id, h.hook_instance), None)

    def close(self) -> None:
        """Stop the writer thread and write what is left (server shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def card(self, card_uuid: str) -> IssuedCard | None:
        with self._lock:
            pending = self._cards.get(card_uuid)
        return pending if pending is not None else self.store.card(card_uuid)

    def hook_call(self, client: str, service_id: str, hook_instance: str) -> HookCall | None:
        with self._lock:
            pending = self._calls.get((client, service_id, hook_instance))
        return pending or self.store.hook_call(client, service_id, hook_instance)

    def admit(self, a: Admission) -> tuple[bool, HookCall | None]:
        """Claim the jti and find the answer already given (queued or stored): one
        round trip to the store. The queue is read first: a flush writes before it
        dequeues, so an answer is always in one or the other."""
        with self._lock:
            pending = self._calls.get((a.issuer, a.service_id, a.hook_instance))
        claimed, stored = self.store.admit(a)
        return claimed, pending or stored
