"""The page in a window 800 pixels wide (a split laptop screen, a tablet): every view,
and the drawer over it, fits without a horizontal scrollbar; the charts follow their
boxes when the window changes width."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page

from tests.conftest import sample_application
from tests.dashboard.browser import log_in
from tests.dashboard.load import processed

NARROW = {"width": 800, "height": 900}
#: What each view shows once its data is in (rows, or the line saying there are none).
LOADED = {
    "live": "#dl-rows tr, #dl-empty:not([hidden])",
    "search": "#search-rows tr",
    "reviews": "#rq-rows tr, #rq-empty:not([hidden])",
    "audit": "#au-rows tr",
    "keys": "#keys-rows tr",
}
#: Elements reaching past the window's right edge, to say what overflows.
OVERFLOWING = """() => [...document.querySelectorAll('body *')]
    .filter(el => el.getClientRects().length
                  && el.getBoundingClientRect().right > window.innerWidth + 0.5)
    .slice(0, 10).map(el => `${el.tagName.toLowerCase()}#${el.id}.${el.className}`)"""


def assert_fits(page: Page) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{widths}: {page.evaluate(OVERFLOWING)}"


@pytest.fixture
def one_application(embedded_server, submit_key) -> str:
    """A processed application: the search and the review queue have a row to show."""
    app = sample_application(external_id="layout-" + uuid.uuid4().hex[:8])
    return processed(embedded_server.url, submit_key, app)


@pytest.mark.parametrize("view", list(LOADED))
def test_every_view_fits_a_window_800_pixels_wide(
    embedded_server, admin_key, one_application, page: Page, view: str
):
    page.set_viewport_size(NARROW)
    log_in(page, embedded_server.url, admin_key)  # every scope: every link and button shown

    page.goto(f"{embedded_server.url}/?view={view}")
    page.wait_for_selector("body[data-ready]")
    page.wait_for_selector(LOADED[view])
    if view == "live":
        page.wait_for_function("() => document.querySelector('[data-chart]').dataset.points")

    assert page.get_attribute("body", "data-view") == view
    assert_fits(page)


def test_a_new_key_s_secret_and_the_revoke_dialog_fit_a_window_800_pixels_wide(
    embedded_server, admin_key, page: Page
):
    page.set_viewport_size(NARROW)
    log_in(page, embedded_server.url, admin_key)
    page.goto(f"{embedded_server.url}/?view=keys")
    page.fill("#key-form [name=label]", "a label long enough to be cut in the narrow table")
    page.fill("#key-form [name=partner_id]", "partner-" + uuid.uuid4().hex)
    page.fill("#key-form [name=rate_per_s]", "1250.5")

    page.click("#key-make")
    page.wait_for_selector("#key-secret-value")
    assert_fits(page)

    page.click("#keys-rows tr [data-action=revoke]")
    page.wait_for_selector("#revoke[open]")
    assert_fits(page)


def test_the_drawer_fits_a_window_800_pixels_wide(
    embedded_server, operator_key, one_application, page: Page
):
    page.set_viewport_size(NARROW)
    log_in(page, embedded_server.url, operator_key)
    page.goto(f"{embedded_server.url}/?view=search")
    page.click(f"#search-rows tr[data-id='{one_application}'] button.link")
    page.wait_for_selector("#ap-timeline li[data-kind=stored]")

    box = page.eval_on_selector("#drawer", "d => d.getBoundingClientRect().toJSON()")
    assert box["left"] >= 0 and box["right"] <= NARROW["width"]
    assert_fits(page)


def test_the_charts_follow_their_boxes_when_the_window_narrows_to_800_pixels(
    embedded_server, operator_key, page: Page
):
    log_in(page, embedded_server.url, operator_key)  # 1600 wide
    page.wait_for_function("() => document.querySelector('[data-chart]').dataset.points")
    wide = page.eval_on_selector_all("[data-chart] canvas", "cs => cs.map(c => c.clientWidth)")

    page.set_viewport_size(NARROW)

    # Each chart's canvas as wide as its box again (uPlot's setSize): one chart a row now,
    # where the wide window had three.
    page.wait_for_function("""() => [...document.querySelectorAll('[data-chart]')].every(box => {
        const plot = box.querySelector('.plot'), canvas = box.querySelector('canvas');
        return Math.abs(canvas.clientWidth - Math.floor(plot.clientWidth)) <= 1;
    })""")
    narrow = page.eval_on_selector_all("[data-chart] canvas", "cs => cs.map(c => c.clientWidth)")
    assert len(narrow) == len(wide) == 5
    assert all(n != w for n, w in zip(narrow, wide, strict=True)), (wide, narrow)
    assert_fits(page)
