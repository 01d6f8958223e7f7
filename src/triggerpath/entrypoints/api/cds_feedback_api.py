"""Parsing CDS Hooks feedback (``POST /cds-services/{id}/feedback``), one item at a time.

Each problem names its field path (``feedback[0].outcomeTimestamp``); an item about a card
TriggerPath issued is linked to it (and must come to the service that issued it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from triggerpath.errors import FieldProblem
from triggerpath.services.feedback import FeedbackRecord, IssuedCard

CardLookup = Callable[[str], IssuedCard | None]


class _Bad(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.problem = FieldProblem(field, reason)


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _timestamp(item: dict[str, Any], at: str) -> datetime:
    stamp = item.get("outcomeTimestamp")
    try:
        when = datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    except ValueError:
        when = None
    if when is None:
        raise _Bad(f"{at}.outcomeTimestamp", "required: ISO timestamp")
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _accepted(
    item: dict[str, Any], at: str, issued: IssuedCard | None
) -> tuple[list[str], list[FieldProblem]]:
    """The accepted suggestion ids (each must be one of the card's)."""
    raw = item.get("acceptedSuggestions")
    if not isinstance(raw, list) or not raw:
        raise _Bad(f"{at}.acceptedSuggestions", "required when accepted")
    accepted: list[str] = []
    problems: list[FieldProblem] = []
    for j, s in enumerate(raw):
        sid = s.get("id") if isinstance(s, dict) else None
        where = f"{at}.acceptedSuggestions[{j}].id"
        if not isinstance(sid, str):
            problems.append(FieldProblem(where, "required"))
        elif issued is not None and sid not in issued.suggestion_ids:
            problems.append(FieldProblem(where, "not a suggestion of the card"))
        else:
            accepted.append(sid)
    return accepted, problems


def _override(item: dict[str, Any], at: str) -> tuple[dict[str, Any], str | None]:
    """The override reason coding and the clinician's comment."""
    reason = item.get("overrideReason")
    if reason is None:
        return {}, None
    if not isinstance(reason, dict):
        raise _Bad(f"{at}.overrideReason", "expected an object")
    raw = reason.get("reason")
    comment = reason.get("userComment")
    if comment is not None and not isinstance(comment, str):
        raise _Bad(f"{at}.overrideReason.userComment", "expected text")
    return (raw if isinstance(raw, dict) else {}), comment


def _item(
    service_id: str, item: Any, at: str, client: str, now: datetime, lookup: CardLookup
) -> tuple[FeedbackRecord | None, list[FieldProblem]]:
    """One feedback item as a record, or the problems with it."""
    if not isinstance(item, dict):
        raise _Bad(at, "expected an object")
    card_id, outcome = item.get("card"), item.get("outcome")
    if not isinstance(card_id, str) or not card_id:
        raise _Bad(f"{at}.card", "required: the card uuid")
    if outcome not in ("accepted", "overridden"):
        raise _Bad(f"{at}.outcome", "'accepted' or 'overridden'")
    when = _timestamp(item, at)
    issued = lookup(card_id)
    if issued is not None and issued.service_id != service_id:
        raise _Bad(f"{at}.card", f"card was issued by {issued.service_id!r}")
    accepted, problems = _accepted(item, at, issued) if outcome == "accepted" else ([], [])
    coding, comment = _override(item, at)
    record = FeedbackRecord(
        service_id=service_id,
        card=card_id,
        outcome=outcome,
        outcome_timestamp=when,
        received_at=now,
        client=client,
        accepted_suggestions=tuple(accepted),
        override_system=_opt_str(coding.get("system")),
        override_code=_opt_str(coding.get("code")),
        override_display=_opt_str(coding.get("display")),
        user_comment=comment[:2000] if comment else None,
        card_code=issued.code if issued else None,
        card_known=issued is not None,
    )
    return record, problems


def parse_feedback(
    service_id: str, body: Any, client: str, now: datetime, lookup: CardLookup
) -> tuple[list[FeedbackRecord], list[FieldProblem]]:
    """The feedback records of a body, and every problem found (by field path)."""
    items = body.get("feedback") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        return [], [FieldProblem("feedback", "required: a non-empty list")]
    records: list[FeedbackRecord] = []
    problems: list[FieldProblem] = []
    for i, item in enumerate(items):
        try:
            record, found = _item(service_id, item, f"feedback[{i}]", client, now, lookup)
        except _Bad as bad:
            problems.append(bad.problem)
            continue
        problems += found
        if record is not None:
            records.append(record)
    return records, problems
