"""What the page's own helpers make of times and failures, run in Chromium as the page runs
them: a time near midnight shows its local date, a 404 names what is missing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.conftest import ServerProcess


@pytest.fixture
def page_in_los_angeles(browser: Browser, embedded_server: ServerProcess) -> Iterator[Page]:
    # West of UTC: an evening there is the next day in UTC.
    context = browser.new_context(timezone_id="America/Los_Angeles")
    page = context.new_page()
    page.goto(embedded_server.url + "/")  # the sign-in page: the scripts' origin
    yield page
    context.close()


def call(page: Page, module: str, expression: str) -> str:
    return str(page.evaluate(
        f"async () => {{ const m = await import('/static/js/{module}'); return {expression}; }}"))


def test_a_time_of_another_day_shows_its_local_date_not_the_utc_one(page_in_los_angeles):
    # 03:30 UTC on 7 December is 19:30 on 6 December in Los Angeles.
    shown = call(page_in_los_angeles, "format.js", "m.stamp('2026-12-07T03:30:00Z')")

    assert shown == "2026-12-06 19:30:00"


def test_a_404_with_a_problem_says_what_is_missing_and_one_without_says_the_route_is(
    page_in_los_angeles,
):
    missing = call(page_in_los_angeles, "api.js",
                   "new m.ApiError(404, 'no API key with id \\'k1\\'',"
                   " {type: '/problems/not-found'}).summary")
    no_route = call(page_in_los_angeles, "api.js", "new m.ApiError(404, 'Not Found').summary")

    assert missing == "no API key with id 'k1' (HTTP 404)"
    assert no_route == "not available on this server (HTTP 404)"
