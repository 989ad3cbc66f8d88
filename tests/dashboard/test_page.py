"""The dashboard page as a browser loads it: no script errors, nothing from elsewhere,
and the screenshot the README shows (`make screenshot` writes it to docs/dashboard.png;
a plain test run writes it to the test's tmp directory, leaving the checkout alone)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from tests.conftest import sample_application
from tests.dashboard.browser import WAIT_MS, Recorder, log_in
from tests.dashboard.load import SteadyLoad, processed

SCREENSHOT_ENV = "LOANFLOW_SCREENSHOT"  # set by `make screenshot`


def screenshot_path(tmp_path: Path, name: str) -> Path:
    """Where `make screenshot` wants picture `name` (beside docs/dashboard.png), else tmp."""
    readme = os.environ.get(SCREENSHOT_ENV)
    return Path(readme).with_name(name) if readme else tmp_path / name


def settle(page) -> None:
    """Wait until every source had its first answer: session, history, dead letters, feed."""
    page.wait_for_selector("#conn:not([data-state=connecting])", timeout=WAIT_MS)
    page.wait_for_selector("#dl-rows tr, #dl-empty:not([hidden]), #dl-status:not([hidden])")
    page.wait_for_function("() => document.querySelector('[data-chart]').dataset.points")


def test_the_dashboard_loads_without_script_errors_or_failed_requests(
    embedded_server, operator_key, page, recorder: Recorder
):
    log_in(page, embedded_server.url, operator_key)
    settle(page)

    assert recorder.page_errors == []
    assert recorder.unexpected_failures() == []


def test_the_page_loads_nothing_from_another_origin(
    embedded_server, operator_key, page, recorder: Recorder
):
    log_in(page, embedded_server.url, operator_key)
    settle(page)

    origin = urlsplit(embedded_server.url).netloc
    assert recorder.requests, "expected the page to make requests"
    elsewhere = [url for url in recorder.requests
                 if urlsplit(url).netloc != origin and not url.startswith("data:")]
    assert elsewhere == []


def test_under_load_the_charts_move_and_a_screenshot_is_saved(
    embedded_server, operator_key, submit_key, page, recorder: Recorder, tmp_path
):
    screenshot = screenshot_path(tmp_path, "dashboard.png")
    page.set_viewport_size({"width": 1920, "height": 1080})
    log_in(page, embedded_server.url, operator_key)
    page.wait_for_selector("#conn[data-state=live]")
    page.click("[data-window='300']")  # the server just started: its last minutes are the load

    with SteadyLoad(embedded_server.url, submit_key, rate_per_s=80, invalid_ratio=0.15) as load:
        # Settled under this load (the tiles average 10 s): the picture the README shows.
        page.wait_for_function(
            """() => {
                const received = document.querySelector('[data-tile=received] .value');
                return parseFloat(received.textContent) >= 30
                    && document.querySelectorAll('#log-rows tr').length >= 10;
            }""",
            timeout=WAIT_MS,
        )
        if os.environ.get(SCREENSHOT_ENV):  # for the README: a minute of the 5-min charts
            page.wait_for_timeout(60_000)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot))
        # The charts move: every second adds a point at the right-hand end.
        newest = int(page.get_attribute("[data-chart=throughput]", "data-last-t") or 0)
        page.wait_for_function(
            "t => document.querySelector('[data-chart=throughput]').dataset.lastT > t",
            arg=newest, timeout=WAIT_MS)

    assert load.accepted > 100
    assert recorder.page_errors == []
    assert screenshot.stat().st_size > 10_000


def test_the_search_and_the_review_queue_are_pictured_for_the_readme(
    embedded_server, operator_key, submit_key, page, recorder: Recorder, tmp_path
):
    made = [processed(embedded_server.url, submit_key, sample_application(
        external_id=f"picture-{n}", applicant__first_name=name))
        for n, name in enumerate(("Maria", "Kwame", "Aiko", "Luis", "Priya", "Jonas"))]
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, embedded_server.url, operator_key)

    search = screenshot_path(tmp_path, "dashboard-search.png")
    page.goto(embedded_server.url + "/?view=search&route=manual_review")
    for app_id in made:  # the sample application is routed to manual review
        page.wait_for_selector(f"#search-rows tr[data-id='{app_id}']", timeout=WAIT_MS)
    page.click(f"#search-rows tr[data-id='{made[0]}'] button.link")  # its drawer
    page.wait_for_selector("#ap-timeline li[data-kind=stored]", timeout=WAIT_MS)
    page.screenshot(path=str(search))

    queue = screenshot_path(tmp_path, "dashboard-reviews.png")
    page.goto(embedded_server.url + "/?view=reviews")
    page.wait_for_selector("#rq-rows tr", timeout=WAIT_MS)  # oldest first: maybe earlier ones
    page.screenshot(path=str(queue))

    assert recorder.page_errors == []
    assert search.stat().st_size > 10_000 and queue.stat().st_size > 10_000
