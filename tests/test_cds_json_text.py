"""The fast check on a CDS Hooks body's bytes (domain/text.py ``json_free_text_clean``).

The hook call skips the walk over every string of a large prefetch when the raw JSON
proves there is no control character to find. It must never say "clean" for a body the
walk would refuse: checked here against the walk itself on generated JSON, written
compactly, indented and ASCII-escaped, and at the route with escapes the bytes hide.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from triggerpath.domain.text import control_character_problems, json_free_text_clean
from triggerpath.entrypoints.api.cds_hooks import FHIR_FREE_TEXT
from triggerpath.knowledge.loader import Knowledge

from .cds_helpers import hook_request
from .test_cds_api import make_app, minimal_prefetch

#: Letters, quotes and backslashes (escapes), every kind of control, non-ASCII text.
LETTERS = list('ab "\\/:{}é½\u2028\ud7ff')
CONTROLS = ["\x00", "\x08", "\t", "\n", "\r", "\x0c", "\x1b", "\x7f", "\x80", "\x85", "\x9f"]
ALPHABET = st.sampled_from([*LETTERS, *CONTROLS, "\xa0"])  # and a no-break space
TEXT = st.text(ALPHABET, max_size=8)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def _problems(data: Any) -> list[Any]:
    return list(control_character_problems(data, multiline_fields=FHIR_FREE_TEXT))


@settings(max_examples=600, deadline=None)
@given(JSON)
def test_the_fast_check_says_clean_exactly_when_the_walk_finds_nothing(data: Any) -> None:
    found = bool(_problems(data))
    for raw in (
        orjson.dumps(data),
        json.dumps(data, indent=1, separators=(",", " \n: ")).encode(),  # space before ":"
        json.dumps(data, ensure_ascii=True).encode(),  # every control as a \\u escape
    ):
        assert json.loads(raw) == data
        clean = json_free_text_clean(raw)
        assert not (clean and found), raw  # never hides a problem
        # and never sends a clean body to the walk (the fast path is the usual path)
        assert clean or found, raw


def test_tab_and_newline_are_free_text_in_values_never_in_keys() -> None:
    assert json_free_text_clean(b'{"div":"line one\\nline two\\ttab\\r\\n"}')
    assert not json_free_text_clean(b'{"di\\nv":"x"}')
    assert not json_free_text_clean(b'{"di\\tv" \n :"x"}')
    assert json_free_text_clean(b'["a\\\\n", {"b\\\\t": 1}]')  # escaped backslash, then n / t


def test_escaped_and_raw_controls_are_caught() -> None:
    for raw in (b'{"a":"\\u0000"}', b'{"a":"\\b"}', b'{"a":"\\f"}', b'{"a":"\\u009F"}'):
        assert not json_free_text_clean(raw), raw
    assert not json_free_text_clean(b'{"a":"x\x7f"}')
    assert not json_free_text_clean('{"a":"\x85"}'.encode())
    assert json_free_text_clean('{"a":"\xa0 é \u2028"}'.encode())


def test_the_route_refuses_escaped_controls_the_fast_check_cannot_rule_out(
    kb: Knowledge,
) -> None:
    client, _ = make_app(kb, env="development")
    body = hook_request("patient-view", "p1", minimal_prefetch("p1"))
    body["prefetch"]["patient"]["gender"] = "fe\x1bmale"
    raw = json.dumps(body, ensure_ascii=True).encode()  # "\\u001b" in the bytes
    headers = {"content-type": "application/json"}
    r = client.post("/cds-services/patient-view", content=raw, headers=headers)
    assert r.status_code == 400
    assert [e["field"] for e in r.json()["errors"]] == ["prefetch.patient.gender"]
    body["prefetch"]["patient"]["gender"] = "female"
    body["prefetch"]["patient"]["na\nme"] = "x"  # a newline in a key: refused
    raw = json.dumps(body).encode()
    r = client.post("/cds-services/patient-view", content=raw, headers=headers)
    assert r.status_code == 400
    assert [e["field"] for e in r.json()["errors"]] == ["prefetch.patient.na\nme"]
