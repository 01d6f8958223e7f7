"""The TriggerPath error tree.

Errors are for things that stop the software from doing its job; clinical
findings (a dose over the limit, a contraindication, a red flag) are *results*
and never exceptions.

::

    TriggerPathError
     ├── KnowledgeError   the knowledge base is broken (every problem, with its path)
     ├── InvalidInput     user or system input is wrong (field path + reason each)
     │    └── WriteRefused  the safety kernel refused a clinical write (rule id + statements)
     ├── NotFound         a record or knowledge item does not exist
     └── Conflict         a concurrent edit or a state that forbids the action
          └── PreconditionFailed  an HTTP If-Match named a version that is not current

Entry points translate these once: the CLI exits 2 on ``InvalidInput``, the API
answers 422 with problem details. Nothing below an entry point prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One problem with one input field: where (dotted path) and why."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


class TriggerPathError(Exception):
    """Base of every error TriggerPath raises on purpose."""


class KnowledgeError(TriggerPathError):
    """The knowledge base failed validation. ``problems`` lists every one found."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"knowledge base is invalid ({len(self.problems)} problem(s)):\n{lines}")


class InvalidInput(TriggerPathError):
    """Input was rejected. Each problem names the field and the reason."""

    def __init__(self, problems: Iterable[FieldProblem] | FieldProblem) -> None:
        if isinstance(problems, FieldProblem):
            problems = [problems]
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems) or "invalid input")

    @classmethod
    def single(cls, field: str, reason: str) -> InvalidInput:
        return cls(FieldProblem(field, reason))


@dataclass(frozen=True, slots=True)
class RuleProblem(FieldProblem):
    """A field problem found by a named safety rule, with the statements behind the rule.

    ``rule`` is a stable id (``dose.exceeds_24h``, ``value.out_of_range`` ...) that a
    client can branch on; ``statement_ids`` are the evidence statements the rule encodes
    (empty when the rule is a plain data check).
    """

    rule: str = ""
    statement_ids: tuple[str, ...] = ()


class WriteRefused(InvalidInput):
    """The safety kernel refused a clinical write: nothing was stored.

    An ``InvalidInput``, so every entry point already treats it as bad input (API 422
    problem details, CLI exit 2, audit outcome ``invalid``); its problems may be
    :class:`RuleProblem` and then carry the rule id and the statement ids.
    """

    def __init__(self, problems: Iterable[FieldProblem] | FieldProblem) -> None:
        super().__init__(problems)

    @classmethod
    def rule(
        cls, field: str, rule: str, reason: str, statement_ids: Sequence[str] = ()
    ) -> WriteRefused:
        return cls(RuleProblem(field, reason, rule, tuple(statement_ids)))


class NotFound(TriggerPathError):
    """A record or knowledge item that was asked for does not exist."""


class Conflict(TriggerPathError):
    """The action conflicts with the current state (for example a stale version)."""


class StoredUnderOtherSchema(Conflict):
    """A stored record (append-only history, never rewritten) that today's schema cannot
    read: a 409 naming the record and its fields, never a 500, and nothing is changed."""

    def __init__(self, kind: str, record_id: object, fields: Sequence[str]) -> None:
        self.fields = list(fields)
        where = ", ".join(self.fields) or "?"
        super().__init__(
            f"{kind} {record_id} was stored under another schema ({where}): record a new "
            f"{kind} or correct it before it is used here"
        )


class StaleVersion(Conflict):
    """The caller read a version that is no longer the current one; nothing was written."""

    def __init__(self, message: str, current: int) -> None:
        self.current_version = current
        super().__init__(message)


class VersionConflict(StaleVersion):
    """A change sent with the version it was made on, which is no longer current (HTTP 409)."""

    def __init__(self, what: str, expected: int, current: int) -> None:
        super().__init__(
            f"{what} is at version {current}, not {expected}: someone changed it since you read "
            "it; reload, reapply your change and send it with the current version",
            current,
        )


class PreconditionFailed(StaleVersion):
    """``If-Match`` named a version that is not the record's current one (HTTP 412)."""

    def __init__(self, what: str, expected: str, current: int) -> None:
        super().__init__(
            f"If-Match {expected} does not match {what} version {current}: someone changed it "
            "since you read it; reload and reapply your change",
            current,
        )
