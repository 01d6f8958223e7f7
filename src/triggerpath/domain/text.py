"""The one rule for text a person or a system sends us: no control characters.

A NUL byte breaks PostgreSQL (it cannot store one in ``text``), and other control
characters hide content from the reader of a clinical record or a log. Free text
(notes, reasons) may hold tab and newline (and the carriage return of a pasted
Windows line end); every other string holds none. Text is never altered: it is
accepted exactly as typed, or refused naming the field.

Every entry point calls this rule (the API middleware for bodies, queries and headers,
the safety kernel for record fields, the CLI for files), so SQLite and PostgreSQL behave
alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from triggerpath.errors import FieldProblem, InvalidInput

FREE_TEXT_ALLOWED = frozenset("\t\n\r")


def _is_control(ch: str) -> bool:
    code = ord(ch)
    return code < 0x20 or code == 0x7F or 0x80 <= code <= 0x9F


def first_control_character(value: str, *, multiline: bool = False) -> int | None:
    """Index of the first forbidden control character in ``value``, or ``None``."""
    allowed = FREE_TEXT_ALLOWED if multiline else frozenset()
    for i, ch in enumerate(value):
        if _is_control(ch) and ch not in allowed:
            return i
    return None


def text_problem(value: str, field: str, *, multiline: bool = False) -> FieldProblem | None:
    """The problem with ``value`` as the content of ``field``, or ``None`` when it is fine."""
    i = first_control_character(value, multiline=multiline)
    if i is None:
        return None
    allowed = " other than tab and newline" if multiline else ""
    return FieldProblem(
        field,
        f"contains a control character (U+{ord(value[i]):04X} at position {i + 1}); "
        f"control characters{allowed} are not accepted",
    )


def check_text(value: str, field: str, *, multiline: bool = False) -> str:
    """Return ``value`` unchanged, or raise :class:`InvalidInput` naming ``field``."""
    problem = text_problem(value, field, multiline=multiline)
    if problem is not None:
        raise InvalidInput(problem)
    return value


def control_character_problems(
    data: Any, prefix: str = "", *, multiline_fields: frozenset[str] = frozenset()
) -> Iterator[FieldProblem]:
    """Walk parsed JSON and yield a problem for every string with a control character.

    Keys are checked as well as values. ``multiline_fields`` names the last path
    segments (``note``, ``reason`` …) that are free text and may hold tab/newline.
    """
    if isinstance(data, str):
        leaf = prefix.rsplit(".", 1)[-1].split("[", 1)[0]
        problem = text_problem(data, prefix or "body", multiline=leaf in multiline_fields)
        if problem is not None:
            yield problem
    elif isinstance(data, dict):
        for key, value in data.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(key, str) and (kp := text_problem(key, path)) is not None:
                yield kp
            yield from control_character_problems(value, path, multiline_fields=multiline_fields)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from control_character_problems(
                value, f"{prefix}[{i}]", multiline_fields=multiline_fields
            )
