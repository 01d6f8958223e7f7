"""Durable store for CDS Hooks cards and feedback (SQLAlchemy Core).

Implements the ``FeedbackStore`` port of :mod:`triggerpath.services.feedback`, so
the feedback loop survives restarts and is shared by every worker: each card is kept
with its evaluation trace, and each accepted/overridden outcome is appended, never changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, cast

import sqlalchemy as sa

from triggerpath.adapters import orm
from triggerpath.services.feedback import FeedbackRecord, IssuedCard


class SqlFeedbackStore:
    """Cards and feedback in the clinic database."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def record_cards(self, cards: Sequence[IssuedCard]) -> None:
        if not cards:
            return
        rows = [
            {
                "uuid": c.uuid,
                "service_id": c.service_id,
                "hook_instance": c.hook_instance,
                "patient_id": c.patient_id,
                "code": c.code,
                "indicator": c.indicator,
                "summary": c.summary[:200],
                "suggestion_ids": list(c.suggestion_ids),
                "draft_orders": list(c.draft_orders),
                "trace": dict(c.trace),
                "issued_at": c.issued_at,
                "client": c.client,
            }
            for c in cards
        ]
        with self._engine.begin() as conn:
            conn.execute(sa.insert(orm.cds_cards), rows)

    def card(self, card_uuid: str) -> IssuedCard | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(orm.cds_cards).where(orm.cds_cards.c.uuid == card_uuid)
            ).first()
        if row is None:
            return None
        m = row._mapping
        return IssuedCard(
            uuid=m["uuid"],
            service_id=m["service_id"],
            hook_instance=m["hook_instance"],
            patient_id=m["patient_id"],
            code=m["code"],
            indicator=m["indicator"],
            summary=m["summary"],
            suggestion_ids=tuple(m["suggestion_ids"]),
            draft_orders=tuple(m["draft_orders"]),
            trace=m["trace"],
            issued_at=m["issued_at"],
            client=m["client"],
        )

    def add_feedback(self, records: Sequence[FeedbackRecord]) -> None:
        if not records:
            return
        rows = [
            {
                "card": r.card,
                "service_id": r.service_id,
                "outcome": r.outcome,
                "outcome_timestamp": r.outcome_timestamp,
                "received_at": r.received_at,
                "client": r.client,
                "accepted_suggestions": list(r.accepted_suggestions),
                "override_system": r.override_system,
                "override_code": r.override_code,
                "override_display": r.override_display,
                "user_comment": r.user_comment,
                "card_code": r.card_code,
                "card_known": r.card_known,
            }
            for r in records
        ]
        with self._engine.begin() as conn:
            conn.execute(sa.insert(orm.cds_feedback), rows)

    def feedback(self, card_uuid: str | None = None) -> list[FeedbackRecord]:
        q = sa.select(orm.cds_feedback).order_by(orm.cds_feedback.c.id)
        if card_uuid is not None:
            q = q.where(orm.cds_feedback.c.card == card_uuid)
        with self._engine.connect() as conn:
            rows = conn.execute(q).all()
        return [_record(r._mapping) for r in rows]


def _record(m: Any) -> FeedbackRecord:
    return FeedbackRecord(
        service_id=m["service_id"],
        card=m["card"],
        outcome=cast(Literal["accepted", "overridden"], m["outcome"]),
        outcome_timestamp=m["outcome_timestamp"],
        received_at=m["received_at"],
        client=m["client"],
        accepted_suggestions=tuple(m["accepted_suggestions"]),
        override_system=m["override_system"],
        override_code=m["override_code"],
        override_display=m["override_display"],
        user_comment=m["user_comment"],
        card_code=m["card_code"],
        card_known=m["card_known"],
    )
