"""The TriggerPath error tree.

Errors are for things that stop the software from doing its job; clinical
findings (a dose over the limit, a contraindication, a red flag) are *results*
and never exceptions.

::

    TriggerPathError
     ├── KnowledgeError   the knowledge base is broken (every problem, with its path)
     ├── InvalidInput     user or system input is wrong (field path + reason each)
     ├── NotFound         a record or knowledge item does not exist
     └── Conflict         a concurrent edit or a state that forbids the action

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


class NotFound(TriggerPathError):
    """A record or knowledge item that was asked for does not exist."""


class Conflict(TriggerPathError):
    """The action conflicts with the current state (for example a stale version)."""
