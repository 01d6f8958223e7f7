"""The password rule (OWASP ASVS 4.0.3 V2.1), one home for every entry point.

- length: at least 12 characters, at most 128 (V2.1.1, V2.1.2); every printable
  Unicode character allowed, spaces included, no composition rules (V2.1.4, V2.1.9);
- not common or breached (V2.1.7): refused when, lower-cased, with common letter/digit
  swaps undone and trailing digits and symbols removed, it is on the shipped list
  (``data/common_passwords.txt``), is one listed word repeated, or is mostly a single
  repeated character or sequence;
- not the username, nor built on it.

The list ships with the package: no download at build or run time.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from triggerpath.domain.text import text_problem
from triggerpath.errors import FieldProblem, InvalidInput

MIN_LENGTH = 12
MAX_LENGTH = 128
_SWAPS = str.maketrans({"@": "a", "4": "a", "0": "o", "1": "l", "3": "e", "$": "s", "5": "s"})
_TRAILING = re.compile(r"[\d\W_]+$")
_SEQUENCES = ("0123456789", "abcdefghijklmnopqrstuvwxyz", "qwertyuiopasdfghjklzxcvbnm")


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("triggerpath.services").joinpath("data", "common_passwords.txt")
    lines = text.read_text(encoding="utf-8").splitlines()
    return frozenset(s.strip().lower() for s in lines if s.strip() and not s.startswith("#"))


def _forms(password: str) -> set[str]:
    """The password as an attacker's dictionary would hold it."""
    low = password.lower()
    forms = {low, low.translate(_SWAPS), _TRAILING.sub("", low)}
    forms.add(_TRAILING.sub("", low.translate(_SWAPS)))
    forms.add(_TRAILING.sub("", low).translate(_SWAPS))
    return {f for f in forms if f}


def _repeats_a_word(form: str, words: frozenset[str]) -> bool:
    for size in range(1, len(form) // 2 + 1):
        unit = form[:size]
        if len(form) % size == 0 and unit * (len(form) // size) == form:
            return size <= 3 or unit in words
    return False


def _is_sequence(form: str) -> bool:
    return any(form in seq or form in seq[::-1] for seq in _SEQUENCES)


def why_weak(password: str, username: str | None = None) -> str | None:
    """Why ``password`` is refused, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"at most {MAX_LENGTH} characters"
    words = common_passwords()
    for form in _forms(password):
        if form in words or _repeats_a_word(form, words) or _is_sequence(form):
            return "is a common or breached password; choose a longer passphrase"
    if password.isdigit():
        return "must not be only digits"
    if len(set(password)) < 5:
        return "is too predictable (too few different characters)"
    if username and len(username) >= 3 and username.lower() in password.lower():
        return "must not contain the username"
    return None


def check_new_password(password: str, username: str | None, field: str = "password") -> str:
    """Return ``password`` unchanged, or raise :class:`InvalidInput` naming ``field``."""
    problems: list[FieldProblem] = []
    if (p := text_problem(password, field)) is not None:
        problems.append(p)
    elif (why := why_weak(password, username)) is not None:
        problems.append(FieldProblem(field, why))
    if problems:
        raise InvalidInput(problems)
    return password
