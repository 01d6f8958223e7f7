"""Card writes off the hot path: queued, readable at once, retried on failure, never lost."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from triggerpath.services.feedback import HookCall, InMemoryFeedbackStore, IssuedCard, WriteBehind

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _card(uuid: str) -> IssuedCard:
    return IssuedCard(
        uuid=uuid,
        service_id="order-sign",
        hook_instance="h1",
        patient_id="p1",
        code="dose-ok",
        indicator="info",
        summary="Dose check",
        suggestion_ids=(),
        draft_orders=(),
        trace={"rule": "dose.check_dose"},
        issued_at=NOW,
        client="https://ehr.example.org",
    )


class Flaky(InMemoryFeedbackStore):
    """Fails the first ``failures`` card writes (a database restarting)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def record_cards(self, cards: Sequence[IssuedCard]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database restarting")
        super().record_cards(cards)


def test_queued_cards_are_readable_before_and_written_after_a_failed_batch() -> None:
    store = Flaky(failures=1)
    writer = WriteBehind(store, interval=3600)  # no timer: flushes are explicit here
    call = HookCall("https://ehr.example.org", "order-sign", "h1", "d" * 64, b"{}", NOW)
    writer.record([_card("c1")], call)
    assert writer.card("c1") is not None and store.card("c1") is None  # queued, visible
    writer.flush()  # fails: kept
    assert store.card("c1") is None and writer.card("c1") is not None
    writer.close()  # shutdown writes what is left
    assert store.card("c1") is not None
    assert store.hook_call("https://ehr.example.org", "order-sign", "h1") == call


def test_a_repeated_card_keeps_its_first_issue() -> None:
    store = InMemoryFeedbackStore()
    store.record_cards([_card("c1")])
    later = _card("c1")
    store.record_cards([IssuedCard(**{**later.__dict__, "summary": "changed"})])
    issued = store.card("c1")
    assert issued is not None and issued.summary == "Dose check"
