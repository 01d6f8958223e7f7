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

import re
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


# --------------------------------------------------------------------------- raw JSON
#: Raw bytes of valid JSON that decode to a control character: DEL and the C1 controls
#: (UTF-8 ``C2 80``-``C2 9F``). C0 controls cannot appear raw inside a JSON string.
_RAW_CONTROL = re.compile(b"\x7f|\xc2[\x80-\x9f]")
#: Every escape of a JSON text, in order (outside strings valid JSON has no backslash).
_ESCAPE = re.compile(rb"\\(?:u([0-9a-fA-F]{4})|(.))", re.DOTALL)
_SHORT_ESCAPES = {b"b": 0x08, b"f": 0x0C, b"n": 0x0A, b"r": 0x0D, b"t": 0x09}
#: From inside a string: the rest of it, then a colon (the string was an object key).
_REST_IS_KEY = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"[ \t\n\r]*:', re.DOTALL)


def json_free_text_clean(raw: bytes) -> bool:
    """True when valid JSON ``raw`` (already parsed, so known valid) provably holds no
    control character under the rule with every value free text and no key free text.

    A fast check on the bytes, for large bodies (a CDS Hooks prefetch): True means
    ``control_character_problems`` of the parsed body with every field free text finds
    nothing; False means "walk it" (it may still find nothing). Exact, because in valid
    JSON a control character can only come from a raw DEL or C1 byte or from an escape.
    """
    if b"\x7f" in raw or (b"\xc2" in raw and _RAW_CONTROL.search(raw) is not None):
        return False  # (the ``in`` tests scan at memory speed; the regex only when needed)
    for m in _ESCAPE.finditer(raw):
        code = int(m[1], 16) if m[1] is not None else _SHORT_ESCAPES.get(m[2], 0x20)
        if not _is_control(chr(code)):
            continue
        if chr(code) not in FREE_TEXT_ALLOWED or _REST_IS_KEY.match(raw, m.end()):
            return False  # a forbidden control, or tab/newline in a key
    return True
