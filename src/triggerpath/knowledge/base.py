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

from pydantic import BaseModel, ConfigDict

KNOWLEDGE_CONFIG = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Strict(BaseModel):
    """Base of every knowledge model (see the module docstring)."""

    model_config = KNOWLEDGE_CONFIG


__all__ = ["KNOWLEDGE_CONFIG", "Strict"]
