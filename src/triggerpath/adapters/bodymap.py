"""Posterior body map as SVG, drawn from the knowledge base's muscles.

Coordinates come from each muscle's ``map_x``/``map_y`` (0-100 box, posterior
view, x < 50 is the patient's left). The map is plain SVG with one focusable
marker per muscle and side, so it works with a keyboard and a screen reader
and needs no JavaScript to display; the web app adds click handling.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from triggerpath.knowledge.loader import Knowledge

#: vertical stretch: the 0-100 box maps onto a taller drawing
Y_SCALE = 1.75
WIDTH, HEIGHT = 100, 100 * Y_SCALE

# A simple posterior outline (head, neck, shoulders, torso, pelvis, thighs), in the 0-100 box.
_OUTLINE = (
    "M50,1 C56,1 59,5 59,10 C59,14 57,16 56,17 L57,19 C66,20 74,21 77,25 "
    "C80,30 80,38 79,45 L78,52 C77,56 74,58 73,60 C73,63 76,66 77,70 "
    "C79,78 77,86 73,100 L55,100 L52,84 L50,82 L48,84 L45,100 L27,100 "
    "C23,86 21,78 23,70 C24,66 27,63 27,60 C26,58 23,56 22,52 L21,45 "
    "C20,38 20,30 23,25 C26,21 34,20 43,19 L44,17 C43,16 41,14 41,10 C41,5 44,1 50,1 Z"
)
_SPINE = "M50,17 L50,66"
_SCAPULAE = ("M35,24 L44,25 L42,40 Z", "M65,24 L56,25 L58,40 Z")
#: zones drawn when a plan's hazard is present (thorax over the lungs, neck roots)
HAZARD_ZONES: dict[str, str] = {
    "pleura": "M24,22 C30,20 45,21 48,22 L48,52 C40,54 30,53 25,50 Z "
    "M76,22 C70,20 55,21 52,22 L52,52 C60,54 70,53 75,50 Z",
    "cervical_nerve_roots": "M45,10 L55,10 L56,19 L44,19 Z",
    "kidney": "M38,50 L46,50 L46,58 L38,58 Z M54,50 L62,50 L62,58 L54,58 Z",
    "sciatic_nerve": "M36,72 L42,72 L42,90 L36,90 Z M58,72 L64,72 L64,90 L58,90 Z",
}


def _y(y: float) -> float:
    return round(y * Y_SCALE, 2)


def _path(d: str) -> str:
    """Scale a path's y coordinates (the path data uses 'x,y' pairs only)."""
    out = []
    for token in d.split():
        head = token[0] if token[0].isalpha() else ""
        body = token[1:] if head else token
        if "," in body:
            x, y = body.split(",")
            out.append(f"{head}{x},{_y(float(y))}")
        else:
            out.append(token)
    return " ".join(out)


def render_body_map(
    kb: Knowledge,
    *,
    selected: Iterable[tuple[str, str]] = (),
    targets: Iterable[tuple[str, str]] = (),
    hazards: Iterable[str] = (),
    interactive: bool = True,
    title: str = "Posterior body map",
) -> str:
    """The SVG markup. ``selected``/``targets`` are (muscle id, side) pairs."""
    sel = set(selected)
    tgt = set(targets)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'class="bodymap" role="group" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        "<style>.tp{fill:#4a7bb7;fill-opacity:.75;stroke:#fff;stroke-width:.4;cursor:pointer}"
        ".tp:focus{outline:none;stroke:#111;stroke-width:.8}.tp.selected{fill:#e08a00;fill-opacity:1}"
        ".tp.target{fill:#2a9d3f;fill-opacity:1;stroke:#111}</style>",
        f'<path class="outline" d="{_path(_OUTLINE)}" fill="#f4efe9" stroke="#8a7f74" '
        'stroke-width="0.5"/>',
        f'<path class="spine" d="{_path(_SPINE)}" stroke="#b8aca0" stroke-width="0.6" '
        'stroke-dasharray="1.5,1"/>',
    ]
    parts += [
        f'<path class="scapula" d="{_path(d)}" fill="none" stroke="#c9bdb0" stroke-width="0.4"/>'
        for d in _SCAPULAE
    ]
    for hz in dict.fromkeys(hazards):
        if hz in HAZARD_ZONES:
            name = kb.hazards[hz].name if hz in kb.hazards else hz
            parts.append(
                f'<path class="hazard hazard-{escape(hz)}" d="{_path(HAZARD_ZONES[hz])}" '
                f'fill="#d9534f" fill-opacity="0.18" stroke="#d9534f" stroke-width="0.3">'
                f"<title>Hazard: {escape(name)}</title></path>"
            )
    parts.append('<text x="3" y="4" font-size="3" fill="#6b6158">L</text>')
    parts.append(f'<text x="{WIDTH - 5}" y="4" font-size="3" fill="#6b6158">R</text>')
    for m in kb.anatomy.muscles:
        for side, x in (("left", m.map_x), ("right", 100 - m.map_x)):
            key = (m.id, side)
            classes = ["tp"]
            if key in sel or (m.id, "bilateral") in sel:
                classes.append("selected")
            if key in tgt or (m.id, "bilateral") in tgt:
                classes.append("target")
            label = f"{m.name}, {side}"
            attrs = (
                f'class="{" ".join(classes)}" data-muscle="{escape(m.id)}" data-side="{side}" '
                f'cx="{x}" cy="{_y(m.map_y)}" r="2.2"'
            )
            if interactive:
                attrs += f' tabindex="0" role="button" aria-label="{escape(label)}"'
                attrs += f' aria-pressed="{"true" if "selected" in classes else "false"}"'
            parts.append(f"<circle {attrs}><title>{escape(label)}</title></circle>")
    parts.append("</svg>")
    return "\n".join(parts)
