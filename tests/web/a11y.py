"""Accessibility and layout harness for the web app's browser tests (issue 17 §3, §8).

``check_page(page, name, primary=...)`` asserts, on the page as it stands:

- axe-core finds 0 violations for the WCAG 2.0/2.1/2.2 A and AA rules. axe-core is the copy
  bundled in the ``axe-playwright-python`` wheel (pinned in pyproject.toml and
  requirements.lock), injected from disk: nothing is fetched at test time.
- no horizontal overflow (``scrollWidth <= clientWidth``);
- every visible interactive target is at least 24 x 24 CSS px (WCAG 2.2 SC 2.5.8), body-map
  markers included. A checkbox or radio counts with its label (clicking the label operates it);
  a link inside a line of text is exempt (the SC's "inline" exception);
- the primary action is at most 10 Tab stops from the top of the page, following a skip link
  where that is shorter; every stop on the way shows a visible focus indicator and the skip
  link is on screen when focused;
- the page is no taller than ``max_height`` when one is given;
- a full-page screenshot goes to ``test-artifacts/screenshots/<name>-<viewport>.png``.

All failures of a page are reported together. The figures measured (height, Tab stops) are
appended to ``test-artifacts/a11y-metrics.jsonl``.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, ViewportSize

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SHOTS = ARTIFACTS / "screenshots"
METRICS = ARTIFACTS / "a11y-metrics.jsonl"
_AXE_SPEC = importlib.util.find_spec("axe_playwright_python")
assert _AXE_SPEC is not None and _AXE_SPEC.origin, "pip install axe-playwright-python (dev deps)"
AXE_JS = Path(_AXE_SPEC.origin).with_name("axe.min.js")
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
MIN_TARGET = 24
MAX_TAB_STOPS = 10

VIEWPORTS: dict[str, ViewportSize] = {
    "1366": {"width": 1366, "height": 768},
    "768": {"width": 768, "height": 1024},
    "360": {"width": 360, "height": 740},
}
# the verdict page: issue 17 §8
VERDICT_MAX_HEIGHT = {1366: 2000, 768: 4500, 360: 4500}

AXE_RUN_JS = """
async (tags) => {
  const r = await axe.run(document, {runOnly: {type: 'tag', values: tags},
                                     resultTypes: ['violations']});
  return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + n.failureSummary)}));
}
"""

TARGETS_JS = """
(min) => {
  const bad = [];
  const sel = 'a[href], button, input:not([type=hidden]), select, textarea, summary, ' +
              '[tabindex]:not([tabindex="-1"]), [role=button], [role=checkbox]';
  const big = (r) => r.width >= min - 0.5 && r.height >= min - 0.5;
  for (const el of document.querySelectorAll(sel)) {
    if (el.closest('template') || el.disabled && el.type === 'hidden') continue;
    const r = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (r.width === 0 && r.height === 0) continue;           // not rendered
    if (style.visibility === 'hidden') continue;
    if (el.classList.contains('skip') && r.right < 0) continue;  // off-screen skip link
    if (big(r)) continue;
    if (el.labels && [...el.labels].some(l => big(l.getBoundingClientRect()))) continue;
    const label = el.closest('label');
    if (label && big(label.getBoundingClientRect())) continue;
    if (el.tagName === 'A' && style.display === 'inline') {
      const block = el.parentElement;
      const text = block ? block.textContent.replace(el.textContent, '').trim() : '';
      if (text.length > 0) continue;                          // a link in a sentence
    }
    bad.push(`${el.outerHTML.slice(0, 90)} ${r.width.toFixed(1)}x${r.height.toFixed(1)}`);
  }
  return bad;
}
"""

FOCUS_JS = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  const r = el.getBoundingClientRect();
  const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;
  const shadow = s.boxShadow && s.boxShadow !== 'none';
  const scale = el instanceof SVGGraphicsElement ? el.getScreenCTM().a : 1;
  const stroke = el instanceof SVGElement && parseFloat(s.strokeWidth) * scale >= 2 &&
                 s.stroke !== 'none';
  const onScreen = r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth;
  return {visible: outline || shadow || stroke, onScreen,
          tag: el.outerHTML.slice(0, 90), skip: el.classList.contains('skip')};
}
"""


@dataclass
class Measured:
    name: str
    viewport: str
    height: int
    tab_stops: int
    tab_stops_plain: int


@cache
def _axe_source() -> str:
    return AXE_JS.read_text(encoding="utf-8")


def _viewport(page: Page) -> ViewportSize:
    size = page.viewport_size
    assert size is not None
    return size


def _start_from_top(page: Page) -> None:
    page.evaluate(
        """() => {
          window.scrollTo(0, 0);
          const s = document.createElement('span');
          s.tabIndex = -1; s.id = '__a11y_start';
          document.body.prepend(s); s.focus();
        }"""
    )


def _matches(page: Page, primary: str) -> bool:
    found: bool = page.locator(primary).evaluate_all(
        "(els) => els.includes(document.activeElement)"
    )
    return found


def _tab_to(page: Page, primary: str, limit: int, stops: list[dict[str, Any]]) -> int | None:
    """Tab until the primary action has focus; the number of stops, or None past the limit."""
    for n in range(1, limit + 1):
        page.keyboard.press("Tab")
        if n == 1:
            page.evaluate("() => document.getElementById('__a11y_start')?.remove()")
        focus = page.evaluate(FOCUS_JS)
        if focus is not None:
            stops.append(focus)
        if _matches(page, primary):
            return n
    return None


def tab_stops(page: Page, primary: str, *, limit: int = 40) -> tuple[int, int, list[str]]:
    """(best, plain, stops without visible focus): Tab stops to ``primary``, with a skip link
    followed and without."""
    assert page.locator(primary).count() >= 1, f"no primary action {primary!r} on {page.url}"
    stops: list[dict[str, Any]] = []
    _start_from_top(page)
    plain = _tab_to(page, primary, limit, stops) or limit + 1
    best = plain
    skips = page.locator("a.skip")
    for i in range(skips.count()):
        _start_from_top(page)
        reached = 0
        for n in range(1, i + 2):  # skip links come first, in order
            page.keyboard.press("Tab")
            if n == 1:
                page.evaluate("() => document.getElementById('__a11y_start')?.remove()")
            reached = n
        focus = page.evaluate(FOCUS_JS)
        assert focus and focus["skip"], f"Tab stop {reached} is not skip link {i + 1}: {focus}"
        assert focus["onScreen"], f"the focused skip link is off screen: {focus}"
        stops.append(focus)
        page.keyboard.press("Enter")
        after = _tab_to(page, primary, limit, stops)
        if after is not None:
            best = min(best, reached + after)
    hidden = list(dict.fromkeys(s["tag"] for s in stops if not s["visible"]))
    page.evaluate("() => window.scrollTo(0, 0)")
    return best, plain, hidden


def check_page(
    page: Page,
    name: str,
    *,
    primary: str,
    max_height: int | None = None,
    tab_limit: int = MAX_TAB_STOPS,
) -> Measured:
    """Run every check on the page as it stands; return what was measured."""
    size = _viewport(page)
    width = size["width"]
    where = f"{name} at {width}px"
    failures: list[str] = []
    page.evaluate("() => window.scrollTo(0, 0)")  # the same starting point for every check
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())  # through the debugger protocol: the CSP does not apply
    violations: Any = page.evaluate(AXE_RUN_JS, AXE_TAGS)
    if violations:
        failures.append(f"axe-core on {where}: {json.dumps(violations, indent=1)}")

    overflow: int = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    if overflow > 0:
        failures.append(f"{where} scrolls sideways by {overflow}px")

    small: Any = page.evaluate(TARGETS_JS, MIN_TARGET)
    if small:
        failures.append(f"targets under {MIN_TARGET}px on {where}: {small}")

    try:
        best, plain, hidden = tab_stops(page, primary)
    except AssertionError as exc:
        failures.append(str(exc))
        best, plain, hidden = -1, -1, []
    if hidden:
        failures.append(f"focus not visible on {where}: {hidden[:5]}")
    if best > tab_limit:
        failures.append(f"{where}: {best} Tab stops to {primary!r} (limit {tab_limit})")

    height: int = page.evaluate("() => document.documentElement.scrollHeight")
    if max_height is not None and height > max_height:
        failures.append(f"{where} is {height}px tall (> {max_height})")

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    measured = Measured(name, str(width), height, best, plain)
    with METRICS.open("a", encoding="utf-8") as out:
        out.write(json.dumps({**asdict(measured), "failures": len(failures)}) + "\n")
    if failures and os.environ.get("A11Y_SOFT"):  # exploring: report, carry on
        print("\nA11Y FAIL " + "\nA11Y FAIL ".join(failures))
    else:
        assert not failures, "\n".join(failures)
    return measured
