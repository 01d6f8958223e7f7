"""The outcome trend as inline SVG, drawn on the server (no script, prints as it shows).

NRS and PEG use the left axis (0-10); ODI and NDI the right axis (0-100 %). Each TPI
session is a dashed vertical line. The chart has a title and a description for screen
readers; the page shows the same numbers in a table.
"""

from __future__ import annotations

from datetime import date, timedelta
from html import escape

from triggerpath.services.episodes import Trend

W, H = 600, 310
LEFT, RIGHT, TOP, BOTTOM = 40, 52, 20, 68
#: text sizes in chart units; the page never draws the chart narrower than 480 px
#: (app.css: it scrolls inside its own box instead), so 15 units >= 12 CSS px (issue 17 §8)
FONT, TICK_FONT = 16, 15
STYLE = {
    "nrs": ("#c0392b", "NRS pain (0-10)", "left", ""),
    "peg": ("#8e44ad", "PEG (0-10)", "left", "6,3"),
    "odi": ("#1f6f8b", "ODI % (right axis)", "right", ""),
    "ndi": ("#16a085", "NDI % (right axis)", "right", "2,3"),
}


def _x(day: date, start: date, days: int) -> float:
    return LEFT + (W - LEFT - RIGHT) * ((day - start).days / days)


def _y(value: float, top: float) -> float:
    return TOP + (H - TOP - BOTTOM) * (1 - max(0.0, min(value, top)) / top)


def trend_svg(t: Trend, *, title: str = "Pain and disability over time") -> str:
    days_all = [p.day for pts in t.series.values() for p in pts] + list(t.sessions)
    if not days_all:
        return ""
    start, end = min(days_all), max(days_all)
    if (end - start).days < 14:
        end = start + timedelta(days=14)
    start -= timedelta(days=2)
    end += timedelta(days=2)
    span = (end - start).days
    desc_parts = []
    for key, pts in t.series.items():
        desc_parts.append(
            f"{STYLE[key][1]}: " + ", ".join(f"{p.day.isoformat()} {p.value:g}" for p in pts)
        )
    desc = (
        "; ".join(desc_parts)
        + f". TPI sessions: {', '.join(d.isoformat() for d in t.sessions) or 'none'}."
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" class="trend" '
        'role="img" aria-labelledby="trend-title trend-desc">',
        f'<title id="trend-title">{escape(title)}</title>',
        f'<desc id="trend-desc">{escape(desc)}</desc>',
        f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" '
        'fill="#fff" stroke="#ccd"/>',
    ]
    for v in range(0, 11, 2):
        y = _y(v, 10)
        out.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="{FONT}" text-anchor="end">{v}</text>'
            f'<text x="{W - RIGHT + 6}" y="{y + 4:.1f}" font-size="{FONT}">{v * 10}%</text>'
        )
    # month / week ticks
    step = 7 if span <= 120 else 30
    d = start
    while d <= end:
        x = _x(d, start, span)
        out.append(
            f'<text x="{x:.1f}" y="{H - BOTTOM + 18}" font-size="{TICK_FONT}" '
            'text-anchor="middle">'
            f"{d.strftime('%d %b')}</text>"
        )
        d += timedelta(days=step)
    for n, day in enumerate(t.sessions, start=1):
        x = _x(day, start, span)
        out.append(
            f'<line class="session" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{H - BOTTOM}" '
            'stroke="#555" stroke-dasharray="4,3"/>'
            f'<text x="{x + 3:.1f}" y="{TOP + 14}" font-size="{FONT}" fill="#333">TPI {n}</text>'
        )
    legend_x, legend_y = LEFT, H - 30
    for key in ("nrs", "peg", "odi", "ndi"):
        pts = t.series.get(key) or []
        if not pts:
            continue
        color, label, axis, dash = STYLE[key]
        top = 10.0 if axis == "left" else 100.0
        coords = [(_x(p.day, start, span), _y(p.value, top)) for p in pts]
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(coords)
        )
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<path class="series series-{key}" d="{path}" fill="none" stroke="{color}" '
            f'stroke-width="2.2"{dash_attr}/>'
        )
        for (x, y), p in zip(coords, pts, strict=True):
            shape = "rect" if p.kind == "pre" else "circle"
            if shape == "rect":
                tip = f"{escape(label)} {p.value:g} on {p.day.isoformat()} (before injection)"
                out.append(
                    f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" '
                    f'fill="{color}"><title>{tip}</title></rect>'
                )
            else:
                out.append(
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.8" fill="{color}">'
                    f"<title>{escape(label)} {p.value:g} on {p.day.isoformat()}</title></circle>"
                )
        width = 30 + 9 * len(label)
        if legend_x + width > W:  # a second legend row
            legend_x, legend_y = LEFT, legend_y + 20
        out.append(
            f'<rect x="{legend_x}" y="{legend_y - 6}" width="12" height="4" fill="{color}"/>'
            f'<text x="{legend_x + 16}" y="{legend_y}" font-size="{FONT}">{escape(label)}</text>'
        )
        legend_x += width
    out.append("</svg>")
    return "".join(out)
