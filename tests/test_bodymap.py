"""The body map is valid SVG with one labelled, focusable marker per muscle and side."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from triggerpath.adapters.bodymap import render_body_map
from triggerpath.knowledge import Knowledge

NS = {"s": "http://www.w3.org/2000/svg"}


def test_every_muscle_has_a_marker_per_side(kb: Knowledge) -> None:
    root = ET.fromstring(render_body_map(kb))
    circles = root.findall(".//s:circle", NS)
    assert len(circles) == 2 * len(kb.muscles)
    seen = {(c.get("data-muscle"), c.get("data-side")) for c in circles}
    assert seen == {(m, s) for m in kb.muscles for s in ("left", "right")}
    for c in circles:
        assert c.get("tabindex") == "0" and c.get("aria-label")


def test_left_is_drawn_on_the_left_in_posterior_view(kb: Knowledge) -> None:
    root = ET.fromstring(render_body_map(kb))
    ql = {
        c.get("data-side"): float(c.get("cx") or 0)
        for c in root.findall(".//s:circle", NS)
        if c.get("data-muscle") == "quadratus_lumborum"
    }
    assert ql["left"] < 50 < ql["right"]


def test_selection_targets_and_hazards_are_marked(kb: Knowledge) -> None:
    svg = render_body_map(
        kb,
        selected=[("quadratus_lumborum", "right")],
        targets=[("rhomboid_major", "bilateral")],
        hazards=["pleura"],
    )
    root = ET.fromstring(svg)
    by_key = {
        (c.get("data-muscle"), c.get("data-side")): c.get("class") or ""
        for c in root.findall(".//s:circle", NS)
    }
    assert "selected" in by_key[("quadratus_lumborum", "right")]
    assert "selected" not in by_key[("quadratus_lumborum", "left")]
    assert (
        "target" in by_key[("rhomboid_major", "left")]
        and "target" in by_key[("rhomboid_major", "right")]
    )
    assert root.find(".//s:path[@class='hazard hazard-pleura']", NS) is not None
