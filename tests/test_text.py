"""The control-character rule (domain/text.py): one home for every entry point."""

from __future__ import annotations

import pytest

from triggerpath.domain.text import check_text, control_character_problems, first_control_character
from triggerpath.errors import InvalidInput


@pytest.mark.parametrize("bad", ["a\x00b", "\x1b[31m", "x\x7f", "\x85", "tab\there"])
def test_single_line_text_refuses_control_characters(bad: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        check_text(bad, "patient.mrn")
    assert exc.value.problems[0].field == "patient.mrn"
    assert "control character" in exc.value.problems[0].reason


def test_free_text_keeps_tab_and_newline_exactly_as_typed() -> None:
    note = "line one\n\tindented\r\nline three"
    assert check_text(note, "note", multiline=True) is note
    with pytest.raises(InvalidInput):
        check_text("nul\x00inside", "note", multiline=True)


def test_unicode_letters_are_not_control_characters() -> None:
    assert first_control_character("Müller-Lüdenscheidt ® 5 mg — ½") is None


def test_walk_names_the_nested_field_and_checks_keys() -> None:
    data = {"a": [{"note": "ok\nfine", "mrn": "M\x00"}], "k\x01": 1}
    fields = [
        p.field for p in control_character_problems(data, multiline_fields=frozenset({"note"}))
    ]
    assert fields == ["a[0].mrn", "k\x01"]
