"""Bounded numbers: the one rule for every numeric input of the engine's models.

Exact arithmetic (``Decimal`` and ``Fraction``) is only safe on numbers of bounded
size: ``Decimal("1e-999999999")`` is a valid Decimal, and printing it or turning it
into a ``Fraction`` builds a number with a billion digits, so a dose check on it
never ends. Every ``Decimal`` the engine accepts therefore passes
:func:`bounded_decimal` first, whatever the path (JSON body, CLI flag, web form,
stored record):

- a JSON number (int or float) or a ``Decimal``; text only as a plain numeral
  (the form Pydantic itself writes Decimals in), never ``true``/``false``;
- finite, below 10**7 in size, with at most 6 decimal places.

Field-specific plausibility (a volume of more than 0.01 mL, a weight of 20-400 kg)
is checked where the field's meaning is known, naming the field in the user's
terms; the bound here only guarantees that every later step is cheap.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

MAX_INTEGER_DIGITS = 7
MAX_PLACES = 6
LIMIT = Decimal(10) ** MAX_INTEGER_DIGITS
NUMERAL = r"^[+-]?[0-9]{1,13}(\.[0-9]{1,13})?([eE][+-]?[0-9]{1,2})?$"
_NUMERAL = re.compile(NUMERAL)


def _from_text(value: str) -> Decimal:
    """A numeral in text (bounded in length before it is parsed)."""
    text = value  # no stripping: " 5 " is text, not a number
    if text.lstrip("+-").casefold() in {"nan", "snan", "inf", "infinity"}:
        raise ValueError("must be a finite number")
    if len(text) > 40 or not _NUMERAL.match(text):
        raise ValueError("must be a number (text is accepted only as a plain numeral)")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only numerals
        raise ValueError("must be a number") from None


def _as_decimal(value: Any) -> Decimal:
    """Any accepted input form as a Decimal (sizes checked before any big conversion)."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        if value.bit_length() > 64:
            raise ValueError(f"is too large (at most {MAX_INTEGER_DIGITS} digits)")
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return Decimal(repr(value))
    if isinstance(value, str):
        return _from_text(value)
    raise ValueError("must be a number")


def bounded_decimal(value: Any) -> Decimal:
    """``value`` as a Decimal of bounded size and precision, or a ``ValueError`` saying why."""
    d = _as_decimal(value)
    if not d.is_finite():
        raise ValueError("must be a finite number")
    if d != 0 and d.adjusted() >= MAX_INTEGER_DIGITS:
        raise ValueError(f"is too large (at most {MAX_INTEGER_DIGITS} digits before the point)")
    t = d.as_tuple()
    assert isinstance(t.exponent, int)
    excess = -MAX_PLACES - t.exponent
    if 0 < excess <= 40 and len(t.digits) > excess and not any(t.digits[-excess:]):
        # trailing zeros are not precision: 70.0000000 is 70.000000
        d = Decimal((t.sign, t.digits[:-excess], -MAX_PLACES))
    elif excess > 0:
        if d != 0 and abs(d) < Decimal(1).scaleb(-MAX_PLACES):
            raise ValueError(f"is too small: it rounds to 0 at {MAX_PLACES} decimal places")
        raise ValueError(f"has more than {MAX_PLACES} decimal places")
    return d


#: The engine's Decimal input type: bounded, strict about booleans and text.
Quantity = Annotated[
    Decimal,
    BeforeValidator(bounded_decimal),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": -1e7, "exclusiveMaximum": 1e7},
                {"type": "string", "pattern": NUMERAL},
            ]
        }
    ),
]
