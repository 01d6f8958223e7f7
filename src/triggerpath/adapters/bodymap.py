"""Posterior body map as SVG, drawn from the knowledge base's muscles.

Coordinates come from each muscle's ``map_x``/``map_y`` (0-100 box, posterior
view, x < 50 is the patient's left). The map is plain SVG with one focusable
marker per muscle and side, so it works with a keyboard and a screen reader
and needs no JavaScript to display; the web app adds click handling.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from html import escape

from triggerpath.knowledge.loader import Knowledge

#: vertical stretch: the 0-100 box maps onto a taller drawing
Y_SCALE = 1.75
WIDTH, HEIGHT = 100, 100 * Y_SCALE
#: marker radius in map units: the map is drawn >= 300 px wide wherever it is interactive
#: (the phone layout included), so 2 x 4 units >= 24 CSS px (WCAG 2.2 SC 2.5.8)
MARKER_R = 4.0
#: centres at least this far apart so that no two markers overlap
MARKER_GAP = 2 * MARKER_R + 0.4

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

#: Referral zones of each muscle's trigger points, drawn for the patient's LEFT side in the
#: 0-100 box (the right side is the mirror image). Our own rough drawings of the zones the
#: knowledge base names in words (``referral_zones``), limited to what a posterior outline of
#: head, trunk, pelvis and thighs can show; the words stay the reference (arm, jaw and leg
#: zones beyond the outline are listed, not drawn).
REFERRAL_ZONES: dict[str, str] = {
    "upper_trapezius": "M43,6 L47,6 L47,18 L44,19 Z M29,20 L41,19 L41,23 L29,24 Z",
    "middle_trapezius": "M44,24 L48,24 L48,36 L44,36 Z M24,22 L30,21 L30,25 L24,25 Z",
    "lower_trapezius": "M43,10 L46,10 L46,17 L43,17 Z M34,21 L42,21 L42,25 L34,25 Z "
    "M42,25 L45,25 L43,40 L40,40 Z",
    "rhomboid_minor": "M43,25 L47,25 L45,40 L41,40 Z",
    "rhomboid_major": "M43,25 L47,25 L45,40 L41,40 Z M35,22 L43,22 L43,25 L35,25 Z",
    "levator_scapulae": "M42,17 L46,17 L45,21 L40,21 Z M42,24 L45,24 L43,36 L40,36 Z "
    "M23,24 L29,23 L29,28 L23,28 Z",
    "serratus_posterior_superior": "M35,24 L43,25 L42,32 L35,30 Z M21,25 L26,24 L26,35 L21,36 Z",
    "infraspinatus": "M40,27 L43,27 L42,38 L39,38 Z M21,25 L26,24 L26,32 L21,32 Z",
    "latissimus_dorsi": "M36,38 L44,38 L44,44 L36,44 Z M22,28 L26,28 L25,40 L22,40 Z",
    "iliocostalis_thoracis": "M36,30 L42,30 L42,38 L36,38 Z M21,40 L25,40 L25,50 L22,50 Z "
    "M38,50 L46,50 L46,58 L38,58 Z",
    "longissimus_thoracis": "M40,52 L47,52 L47,60 L40,60 Z M32,64 L42,64 L42,74 L32,74 Z",
    "iliocostalis_lumborum": "M38,52 L46,52 L46,60 L38,60 Z M32,66 L42,66 L42,74 L32,74 Z",
    "multifidus_thoracic": "M46,36 L49,36 L49,48 L46,48 Z",
    "multifidus_lumbar": "M46,54 L49,54 L49,64 L46,64 Z M44,66 L50,66 L50,80 L44,78 Z "
    "M36,68 L43,68 L43,76 L36,76 Z",
    "serratus_posterior_inferior": "M33,44 L44,44 L44,51 L33,51 Z",
    "quadratus_lumborum": "M44,64 L48,64 L48,70 L44,70 Z M32,74 L43,74 L43,81 L32,81 Z "
    "M29,60 L44,59 L44,62 L29,63 Z M24,70 L28,70 L28,78 L24,78 Z",
    "gluteus_medius": "M30,60 L44,59 L44,62 L30,63 Z M44,63 L50,63 L50,72 L44,72 Z "
    "M32,66 L42,66 L42,76 L32,76 Z M24,80 L28,80 L28,90 L25,90 Z",
    "gluteus_minimus": "M32,74 L42,74 L42,81 L32,81 Z M26,84 L34,84 L34,100 L28,100 Z",
    "piriformis": "M44,63 L48,63 L48,70 L44,70 Z M32,66 L43,66 L43,76 L32,76 Z "
    "M30,82 L40,82 L40,92 L31,92 Z",
}


def _mirror(d: str) -> str:
    """The same path for the other side (x -> 100 - x)."""
    return _map_points(d, lambda x, y: (100 - x, y))


def _y(y: float) -> float:
    return round(y * Y_SCALE, 2)


def _map_points(d: str, fn: Callable[[float, float], tuple[float, float]]) -> str:
    """A path with every 'x,y' pair mapped through ``fn`` (the data uses such pairs only)."""
    out = []
    for token in d.split():
        head = token[0] if token[0].isalpha() else ""
        body = token[1:] if head else token
        if "," in body:
            x, y = fn(*(float(v) for v in body.split(",")))
            out.append(f"{head}{x:g},{y:g}")
        else:
            out.append(token)
    return " ".join(out)


def _path(d: str) -> str:
    """Scale a path's y coordinates onto the taller drawing."""
    return _map_points(d, lambda x, y: (x, _y(y)))


def marker_positions(kb: Knowledge) -> dict[str, tuple[float, float]]:
    """Where each muscle's left-side marker is drawn (the right side mirrors it).

    Starts at the knowledge base's ``map_x``/``map_y`` and pushes apart markers closer than
    :data:`MARKER_GAP` (a few deterministic relaxation passes), keeping each left marker far
    enough from the midline that it does not touch its right-side twin. The anatomy data
    stays as it is: only the drawing moves.
    """
    pos = {m.id: [float(m.map_x), _y(m.map_y)] for m in kb.anatomy.muscles}
    ids = list(pos)
    limit = 50 - MARKER_GAP / 2
    for _ in range(60):
        moved = False
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                (ax, ay), (bx, by) = pos[a], pos[b]
                dx, dy = bx - ax, by - ay
                dist = (dx * dx + dy * dy) ** 0.5
                if dist >= MARKER_GAP:
                    continue
                moved = True
                if dist < 1e-6:
                    dx, dy, dist = 0.0, 1.0, 1.0
                push = (MARKER_GAP - dist) / 2 + 0.01
                ux, uy = dx / dist, dy / dist
                pos[a] = [ax - ux * push, ay - uy * push]
                pos[b] = [bx + ux * push, by + uy * push]
        for p in pos.values():
            p[0] = min(p[0], limit)
        if not moved:
            break
    return {k: (round(x, 2), round(y, 2)) for k, (x, y) in pos.items()}


def render_body_map(
    kb: Knowledge,
    *,
    selected: Iterable[tuple[str, str]] = (),
    targets: Iterable[tuple[str, str]] = (),
    hazards: Iterable[str] = (),
    zones: Iterable[tuple[str, str]] = (),
    interactive: bool = True,
    title: str = "Posterior body map",
) -> str:
    """The SVG markup. ``selected``/``targets``/``zones`` are (muscle id, side) pairs;
    ``zones`` are the markers whose referral zones are drawn (the web app shows the others
    as a muscle is picked)."""
    sel = set(selected)
    tgt = set(targets)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'class="bodymap" role="group" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        "<style>.tp{fill:#4a7bb7;fill-opacity:.75;stroke:#fff;stroke-width:.4;cursor:pointer}"
        ".tp:focus{outline:none;stroke:#111;stroke-width:1}.tp.selected{fill:#e08a00;fill-opacity:1}"
        ".tp.target{fill:#2a9d3f;fill-opacity:1;stroke:#111}"
        ".referral{display:none}.referral.shown{display:inline}</style>",
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
    shown = set(zones)
    for mid, d in REFERRAL_ZONES.items():
        for side, path in (("left", d), ("right", _mirror(d))):
            on = (mid, side) in shown or (mid, "bilateral") in shown
            parts.append(
                f'<path class="referral{" shown" if on else ""}" data-muscle="{mid}" '
                f'data-side="{side}" d="{_path(path)}" fill="#7b3fa0" fill-opacity="0.3" '
                f'stroke="#7b3fa0" stroke-width="0.3" aria-hidden="true"/>'
            )
    parts.append('<text x="3" y="4" font-size="3" fill="#6b6158">L</text>')
    parts.append(f'<text x="{WIDTH - 5}" y="4" font-size="3" fill="#6b6158">R</text>')
    where = marker_positions(kb)
    for m in kb.anatomy.muscles:
        mx, my = where[m.id]
        for side, x in (("left", mx), ("right", round(100 - mx, 2))):
            key = (m.id, side)
            classes = ["tp"]
            if key in sel or (m.id, "bilateral") in sel:
                classes.append("selected")
            if key in tgt or (m.id, "bilateral") in tgt:
                classes.append("target")
            label = f"{m.name}, {side}"
            attrs = (
                f'class="{" ".join(classes)}" data-muscle="{escape(m.id)}" data-side="{side}" '
                f'cx="{x}" cy="{my}" r="{MARKER_R}"'
            )
            if interactive:
                attrs += f' tabindex="0" role="button" aria-label="{escape(label)}"'
                attrs += f' aria-pressed="{"true" if "selected" in classes else "false"}"'
            parts.append(f"<circle {attrs}><title>{escape(label)}</title></circle>")
    parts.append("</svg>")
    return "\n".join(parts)
