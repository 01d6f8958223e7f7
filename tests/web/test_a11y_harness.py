"""The harness itself: each check in tests/web/a11y.py fails on a page built to break it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page

from .a11y import VIEWPORTS, check_page

pytestmark = pytest.mark.browser

GOOD = """<!doctype html><html lang="en"><head><title>ok</title>
<style>:focus-visible{outline:3px solid #000} a,button{display:inline-block;min-width:24px;
min-height:24px} .skip{position:absolute;left:-999px} .skip:focus{left:8px}</style></head>
<body><a class="skip" href="#main">Skip to content</a><header><a href="#">Home</a></header>
<main id="main" tabindex="-1"><h1>Page</h1>BODY<button id="go">Go</button></main></body></html>
"""


@pytest.fixture
def bare(browser: Browser) -> Page:
    context = browser.new_context(viewport=VIEWPORTS["360"])
    return context.new_page()


def test_a_good_page_passes(bare: Page) -> None:
    bare.set_content(GOOD.replace("BODY", ""))
    measured = check_page(bare, "harness-good", primary="#go", max_height=800)
    assert measured.tab_stops == 2  # skip link, then the button
    assert measured.tab_stops_plain == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('<img src="x.png">', "axe-core"),
        ('<div style="width:2000px">wide</div>', "sideways"),
        ('<button style="min-height:0;min-width:0;padding:0;font-size:8px">x</button>', "targets"),
        ("".join(f'<a href="#{i}">link {i}</a> ' for i in range(12)), "Tab stops"),
        (
            '<a href="#" style="outline:none" class="plain">x</a>'
            "<style>.plain:focus-visible{outline:none}</style>",
            "focus not visible",
        ),
        ('<div style="height:3000px"></div>', "tall"),
    ],
)
def test_each_check_fails_on_a_broken_page(bare: Page, body: str, message: str) -> None:
    bare.set_content(GOOD.replace("BODY", body))
    with pytest.raises(AssertionError, match=message):
        check_page(bare, "harness-bad", primary="#go", max_height=2000)
