"""The body map is valid SVG with one labelled, focusable marker per muscle and side."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from triggerpath.adapters.bodymap import (
    MARKER_GAP,
    MARKER_R,
    REFERRAL_ZONES,
    Y_SCALE,
    marker_positions,
    render_body_map,
)
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


def test_markers_are_24_px_targets_that_do_not_overlap_and_stay_near_their_muscle(
    kb: Knowledge,
) -> None:
    """WCAG 2.2 SC 2.5.8: >= 24 CSS px on a map drawn >= 300 px wide; spreading the markers
    apart moves each at most a few map units from its knowledge position (issue 17 §8)."""
    assert 2 * MARKER_R * 300 / 100 >= 24
    where = marker_positions(kb)
    points = [(x, y) for x, y in where.values()] + [(100 - x, y) for x, y in where.values()]
    closest = min(math.dist(a, b) for i, a in enumerate(points) for b in points[i + 1 :])
    assert closest >= MARKER_GAP - 0.05
    for m in kb.anatomy.muscles:
        x, y = where[m.id]
        assert math.dist((x, y), (m.map_x, m.map_y * Y_SCALE)) <= 8, m.id


def test_referral_zones_are_drawn_for_every_muscle_and_mirrored(kb: Knowledge) -> None:
    assert set(REFERRAL_ZONES) == {m.id for m in kb.anatomy.muscles}
    root = ET.fromstring(render_body_map(kb, zones=[("piriformis", "left")]))
    shown = [
        p
        for p in root.iter("{http://www.w3.org/2000/svg}path")
        if "shown" in (p.get("class") or "").split()
    ]
    assert [(p.get("data-muscle"), p.get("data-side")) for p in shown] == [("piriformis", "left")]
