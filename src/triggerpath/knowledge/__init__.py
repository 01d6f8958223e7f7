"""Clinical knowledge as versioned, schema-validated data.

``Knowledge`` and ``load_knowledge`` are re-exported lazily (PEP 562 ``__getattr__``), so
that importing a light module of this package (``knowledge.cache``, which the console
script configures before it knows which command runs) does not build every knowledge model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from triggerpath.knowledge.loader import Knowledge, load_knowledge

__all__ = ["Knowledge", "load_knowledge"]


def __getattr__(name: str) -> Any:
    """Import the loader on first use of a public name."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("triggerpath.knowledge.loader"), name)
    globals()[name] = value
    return value
