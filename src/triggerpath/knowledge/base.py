"""The one base class of every knowledge model: strict, frozen, built on first use.

``extra="forbid"`` so that a typo in a data file fails loudly at load time instead of
silently dropping clinical content; ``frozen`` because the knowledge base is immutable once
loaded. ``defer_build`` makes pydantic build a model's validator and serializer the first
time the model validates or dumps, not when its module is imported: a CLI command that gets
the validated knowledge base from the cache (``knowledge/cache.py``) never validates a
knowledge file and so never pays for building these ~100 schemas. Validation itself is
unchanged: the same schema is built, only later.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

KNOWLEDGE_CONFIG = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class HasId(Protocol):
    @property
    def id(self) -> str: ...


Item = TypeVar("Item", bound=HasId)


class Strict(BaseModel):
    """Base of every knowledge model (see the module docstring)."""

    model_config = KNOWLEDGE_CONFIG


def find(items: Iterable[Item], item_id: str) -> Item | None:
    """The item of ``items`` whose ``id`` is ``item_id``, or None."""
    return next((item for item in items if item.id == item_id), None)


def by_id(items: Iterable[Item], item_id: str) -> Item:
    """The item of ``items`` whose ``id`` is ``item_id``; a ``KeyError`` naming it if none.

    For ids the code itself names (``"odi"``, ``"seed_50"``), which the loader's checks
    guarantee; an id from input goes through :func:`find`.
    """
    found = find(items, item_id)
    if found is None:
        raise KeyError(f"no knowledge item with id {item_id!r}")
    return found


__all__ = ["KNOWLEDGE_CONFIG", "HasId", "Strict", "by_id", "find"]
