"""Simple line drawings for the home exercise sheet, as inline SVG (drawn by the project).

One figure per starting position (standing, sitting, lying on the back, lying face down,
lying on the side, on hands and knees), read from the exercise's own instructions, with a
small mark for the kind of exercise (stretch, movement, strengthening, self-massage,
posture). The drawings show the position, not the detail: the text beside them does that.
"""

from __future__ import annotations

from html import escape

from triggerpath.knowledge.schema import Exercise

_STROKE = 'fill="none" stroke="#27313d" stroke-width="2.2" stroke-linecap="round"'
_HEAD = '<circle cx="{x}" cy="{y}" r="5" fill="#fff" stroke="#27313d" stroke-width="2.2"/>'

#: body lines per position (viewBox 0 0 100 70); the floor line is added for lying positions
POSES: dict[str, tuple[tuple[float, float], str, bool]] = {
    "standing": (
        (50, 10),
        "M50,15 L50,40 M50,22 L38,34 M50,22 L62,34 M50,40 L42,62 M50,40 L58,62",
        False,
    ),
    "sitting": (
        (40, 12),
        "M40,17 L40,40 M40,24 L52,34 M40,40 L58,40 L58,60 M28,42 L28,62 M26,42 L62,42",
        False,
    ),
    "supine": ((14, 52), "M19,53 L52,53 M30,53 L40,44 M52,53 L64,40 L76,53", True),
    "prone": ((14, 50), "M19,53 L80,53 M22,51 L8,44 M22,51 L10,58", True),
    "side": ((16, 46), "M20,50 L50,54 M50,54 L64,46 L78,54 M30,51 L34,40", True),
    "quadruped": ((20, 30), "M25,33 L62,33 M30,33 L30,55 M62,33 L62,55 L74,55", True),
}
_KIND_MARK: dict[str, str] = {
    "stretch": '<path d="M78,10 q8,8 0,16" {s}/><path d="M76,24 l2,3 l3,-2" {s}/>',
    "range_of_motion": '<path d="M80,8 a8,8 0 1 1 -8,8" {s}/><path d="M72,16 l-2,-4 l4,0" {s}/>',
    "strengthening": '<rect x="74" y="8" width="14" height="6" rx="2" {s}/>'
    '<path d="M81,14 L81,20" {s}/>',
    "self_massage": '<circle cx="82" cy="14" r="6" {s}/>',
    "posture": '<path d="M82,6 L82,24 M78,10 L82,6 L86,10" {s}/>',
}


def pose_of(ex: Exercise) -> str:
    """The starting position, read from the instructions (standing when they do not say)."""
    text = ex.instructions.lower()
    checks = (
        ("hands and knees", "quadruped"),
        ("face down", "prone"),
        ("lie on your side", "side"),
        ("lie on your back", "supine"),
        ("lie with", "supine"),
        ("sit", "sitting"),
    )
    for needle, pose in checks:
        if needle in text:
            return pose
    return "standing"


def exercise_figure(ex: Exercise) -> str:
    """A small labelled SVG of the exercise's starting position."""
    pose = pose_of(ex)
    (hx, hy), body, floor = POSES[pose]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 70" width="120" height="84" '
        f'role="img" aria-label="{escape(ex.name)}: starting position ({pose})" class="figure">',
        f"<title>{escape(ex.name)}</title>",
    ]
    if floor:
        parts.append('<path d="M2,62 L98,62" stroke="#9aa5b1" stroke-width="1.5"/>')
    parts.append(f'<path d="{body}" {_STROKE}/>')
    parts.append(_HEAD.format(x=hx, y=hy))
    mark = _KIND_MARK.get(ex.kind)
    if mark:
        parts.append(mark.format(s='fill="none" stroke="#1f6f8b" stroke-width="2"'))
    parts.append("</svg>")
    return "".join(parts)
