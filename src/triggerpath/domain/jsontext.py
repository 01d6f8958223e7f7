"""Bounded JSON reading: hostile text becomes a clear error naming the field, never a crash.

``json.loads`` on its own turns some inputs into exceptions that are not
``JSONDecodeError`` (an integer of more than 4,300 digits raises ``ValueError``,
deep nesting raises ``RecursionError``) and accepts ``NaN`` and ``Infinity``,
which are not JSON. :func:`loads` parses with bounds instead:

- at most :data:`MAX_BYTES` characters;
- number literals of at most :data:`MAX_NUMBER_CHARS` characters (the engine's
  numbers are bounded far below that; see :mod:`triggerpath.domain.numbers`);
- no ``NaN``, ``Infinity`` or ``-Infinity``;
- nesting at most :data:`MAX_DEPTH` levels (the deepest engine input, a plan file,
  needs six).

Pure (text in, data out): every entry point that reads JSON text calls it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from triggerpath.errors import InvalidInput

MAX_BYTES = 5_000_000
MAX_NUMBER_CHARS = 40
MAX_DEPTH = 32


class _Refused(ValueError):
    """A bound was crossed while parsing (the message says which)."""


def _int(text: str) -> int:
    """An integer literal, refused when longer than any engine number could be."""
    if len(text) > MAX_NUMBER_CHARS:
        raise _Refused(f"a number of {len(text)} digits is far too large")
    return int(text)


def _float(text: str) -> float:
    """A decimal literal, refused when longer than any engine number could be."""
    if len(text) > MAX_NUMBER_CHARS:
        raise _Refused(f"a number written with {len(text)} characters is not accepted")
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"{text} is too large for a number")
    return value


def _constant(text: str) -> Any:
    """``NaN`` and ``Infinity`` are not JSON numbers."""
    raise _Refused(f"{text} is not a JSON number")


def _depth(data: Any) -> int:
    """The nesting depth of parsed data, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in node.values())
        elif isinstance(node, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in node)
    return deepest


def loads(text: str, field: str = "(body)", *, what: str = "the body") -> Any:
    """Parse JSON text within the bounds above, or raise ``InvalidInput`` naming ``field``.

    ``what`` names the text in messages (e.g. the file's path).
    """
    if len(text) > MAX_BYTES:
        raise InvalidInput.single(field, f"{what} is over {MAX_BYTES:,} characters")
    try:
        data = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput.single(
            field, f"{what} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except _Refused as exc:
        raise InvalidInput.single(field, f"{what} is not accepted: {exc}") from None
    except RecursionError:
        raise InvalidInput.single(field, f"{what} is nested too deeply") from None
    if _depth(data) > MAX_DEPTH:
        raise InvalidInput.single(field, f"{what} is nested more than {MAX_DEPTH} levels deep")
    return data
