"""The charts' longer ranges: what a server recorded is there after it restarts, and
each minute's refresh fetches only what is new or may have changed.

The refresh tests hold the page's clock (Playwright's `page.clock`) and move it a minute
on, as a laptop lid closed for a minute would: the page's timer fires, and the server,
on its own clock, answers what it has."""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, Response, Route

from loanflow.api.problems import TYPE_BASE
from loanflow.loadgen.synthetic import generate
from loanflow.metrics.series_base import MINUTE_S, SECOND_HISTORY_S
from tests.conftest import ServerProcess, auth, create_key
from tests.dashboard.browser import Recorder, log_in
from tests.dashboard.load import submit

#: A minute's traffic shows once the minute has ended and settled: at most this long.
MINUTE_WAIT_S = 75
#: How often the charts refresh a per-minute range (charts.js MINUTE_REFRESH_MS).
REFRESH_MS = 60_000
WEEK_S = 7 * 24 * 60 * 60
#: The most minutes that can be not final: those the roll-up still reaches.
REACH_MINUTES = (SECOND_HISTORY_S + MINUTE_S) // MINUTE_S
SEVEN_DAYS = "[data-window='604800']"
THROUGHPUT_7D = "[data-chart=throughput][data-range='7d']"
#: A refresh of the 7 d range: it names where the part it asks for starts.
REFRESH = re.compile(r"/v1/metrics/series\?range=7d&after=")
METRICS_UNAVAILABLE = {"type": f"{TYPE_BASE}metrics-unavailable",
                       "title": "Service unavailable", "status": 503}


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of this test's own: stopping it must not disturb the other tests."""
    srv = ServerProcess(tmp_path).start()
    yield srv
    srv.stop()


def busy_minutes(server: ServerProcess, key: str) -> list[int]:
    """The minutes of the 24 h range in which applications were received."""
    body = httpx.get(f"{server.url}/v1/metrics/series", params={"range": "24h"},
                     headers=auth(key), timeout=10).json()
    return [t for t, r in zip(body["t"], body["received_per_s"], strict=True) if r]


def test_switch_the_charts_to_24_h_after_a_restart(
    restartable: ServerProcess, page, recorder: Recorder
):
    # Given traffic recorded by the server, in a minute that has ended
    submit_key = create_key(restartable.deployment, "submit")
    read_key = create_key(restartable.deployment, "read")
    for seed in range(5):
        submit(restartable.url, submit_key, generate(random.Random(seed)))
    deadline = time.monotonic() + MINUTE_WAIT_S
    while not busy_minutes(restartable, read_key):
        assert time.monotonic() < deadline, "the traffic's minute never showed in the 24 h range"
        time.sleep(1)
    traffic_minute = busy_minutes(restartable, read_key)[0]

    # When the server restarts and the charts switch to 24 h
    restartable.stop()
    restarted_at = time.time()
    restartable.start()
    log_in(page, restartable.url, create_key(restartable.deployment, "read"))
    page.click("[data-window='86400']")

    # Then the throughput chart draws a point per minute, the traffic's among them
    chart = "[data-chart=throughput][data-range='24h'][data-first-busy-t]"
    page.wait_for_selector(chart)
    assert page.get_attribute(chart, "data-step-s") == "60"
    assert int(page.get_attribute(chart, "data-points") or 0) == 24 * 60
    first_busy = int(page.get_attribute(chart, "data-first-busy-t") or 0)
    assert first_busy == traffic_minute < restarted_at
    assert page.get_attribute("[data-window='86400']", "aria-pressed") == "true"

    # And the choice survives a reload of the page
    page.reload()
    page.wait_for_selector(chart)
    assert page.get_attribute("[data-window='86400']", "aria-pressed") == "true"
    assert recorder.page_errors == []
    assert recorder.unexpected_failures() == []


def series_of(range_name: str) -> Callable[[Response], bool]:
    return lambda answer: (urlsplit(answer.url).path == "/v1/metrics/series"
                           and f"range={range_name}" in answer.url)


def query_of(answer: Response) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(answer.url).query))


def show_seven_days(page: Page) -> Response:
    """Choose the 7 d range; the answer it loaded, once drawn."""
    with page.expect_response(series_of("7d")) as loaded:
        page.click(SEVEN_DAYS)
    page.wait_for_selector(f"{THROUGHPUT_7D}[data-points='{WEEK_S // 60}']")
    return loaded.value


def drawn(page: Page) -> dict[str, str | None]:
    """What the throughput chart says it draws."""
    return {name: page.get_attribute(THROUGHPUT_7D, f"data-{name}")
            for name in ("points", "last-t", "first-busy-t", "step-s")}


def throughput_after_refresh(whole: dict[str, Any], part: dict[str, Any]) -> dict[str, str | None]:
    """What the chart must draw from the two answers: the whole range's points, those of
    the part's minutes replaced by its own, the oldest cut to keep 7 days."""
    lines = ("received_per_s", "stored_per_s", "rejected_per_s")
    points = {t: [body[line][i] for line in lines]
              for body in (whole, part) for i, t in enumerate(body["t"])}
    newest = max(points)
    shown = sorted(t for t in points if t > newest - WEEK_S)
    busy = [t for t in shown if any(points[t])]
    return {"points": str(len(shown)), "last-t": str(newest),
            "first-busy-t": str(busy[0]) if busy else None, "step-s": "60"}


def test_the_minute_refresh_asks_only_for_what_is_new_or_may_have_changed(
    embedded_server, reader_key, page: Page, recorder: Recorder
):
    # Given the 7 d range drawn from its whole answer
    page.clock.install()
    log_in(page, embedded_server.url, reader_key)
    loaded = show_seven_days(page)
    whole = loaded.json()
    assert query_of(loaded) == {"range": "7d"}
    # Written again only when new per-minute points are drawn: blank, it shows that.
    page.eval_on_selector(THROUGHPUT_7D, "box => { box.dataset.points = '' }")

    # When a minute passes
    with page.expect_response(series_of("7d")) as refreshed:
        page.clock.fast_forward(REFRESH_MS)

    # Then it asks for the points after those final in the last answer, and gets only them
    assert query_of(refreshed.value) == {"range": "7d", "after": str(whole["final_through"])}
    part = refreshed.value.json()
    first = whole["final_through"] + 60
    assert part["t"] == list(range(first, first + 60 * len(part["t"]), 60))
    # Usually a point or two; at most the roll-up's reach, an hour, on a server just started.
    assert len(part["t"]) <= REACH_MINUTES + 2
    # And the chart still holds the whole range, the part merged in
    expected = throughput_after_refresh(whole, part)
    assert expected["points"] == str(WEEK_S // 60)
    page.wait_for_selector(f"{THROUGHPUT_7D}[data-points='{expected['points']}']")
    assert drawn(page) == expected
    assert recorder.page_errors == []
    assert recorder.unexpected_failures() == []


def test_a_failed_refresh_keeps_the_chart_and_the_next_one_asks_again(
    embedded_server, reader_key, page: Page, recorder: Recorder
):
    # Given the 7 d range drawn
    page.clock.install()
    log_in(page, embedded_server.url, reader_key)
    whole = show_seven_days(page).json()
    before = drawn(page)

    # When a refresh fails (the metrics backend unreachable: answered at the network edge)
    def unavailable(route: Route) -> None:
        route.fulfill(status=503, content_type="application/problem+json",
                      body=json.dumps(METRICS_UNAVAILABLE))

    page.route(REFRESH, unavailable)
    with page.expect_response(REFRESH) as failed:
        page.clock.fast_forward(REFRESH_MS)
    page.wait_for_selector("#history-status:has-text('History of 7d unavailable')")

    # Then the chart keeps what it drew
    assert drawn(page) == before
    # And the next minute asks for the same part again; the warning goes once it answers
    page.unroute(REFRESH)
    with page.expect_response(REFRESH) as retried:
        page.clock.fast_forward(REFRESH_MS)
    after = str(whole["final_through"])
    assert query_of(failed.value)["after"] == query_of(retried.value)["after"] == after
    page.wait_for_selector("#history-status", state="hidden")
    assert recorder.page_errors == []
    # The one failure is that refresh's (the answer, and the browser's console line on it).
    assert recorder.unexpected_failures()
    assert [line for line in recorder.unexpected_failures() if failed.value.url not in line] == []


def test_a_range_chosen_again_loads_its_whole_range(
    embedded_server, reader_key, page: Page, recorder: Recorder
):
    # Given the 7 d range drawn and refreshed once
    page.clock.install()
    log_in(page, embedded_server.url, reader_key)
    show_seven_days(page)
    with page.expect_response(series_of("7d")) as refreshed:
        page.clock.fast_forward(REFRESH_MS)
    assert "after" in query_of(refreshed.value)

    # When 24 h is chosen, then 7 d again
    with page.expect_response(series_of("24h")) as day:
        page.click("[data-window='86400']")
    page.wait_for_selector("[data-chart=throughput][data-range='24h'][data-points='1440']")
    again = show_seven_days(page)

    # Then each loads its whole range
    assert query_of(day.value) == {"range": "24h"}
    assert query_of(again) == {"range": "7d"}
    assert recorder.page_errors == []
    assert recorder.unexpected_failures() == []
