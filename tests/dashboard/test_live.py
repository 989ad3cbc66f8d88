"""The live view against a real server: numbers from the WebSocket feed, the error log."""

from __future__ import annotations

import re

import httpx

from tests.conftest import sample_application
from tests.dashboard.browser import WAIT_MS, Recorder, log_in
from tests.dashboard.load import submit

HOSTILE_NAME = "<img src=x onerror=window.__xss=1>"


def page_count(page, table: str, key: str) -> int:
    cell = page.locator(f"#{table} tr[data-key='{key}'] td.num")
    return int(cell.inner_text().replace(",", "")) if cell.count() else -1


def test_counts_on_the_page_match_the_metrics_summary(
    embedded_server, operator_key, submit_key, page
):
    log_in(page, embedded_server.url, operator_key)
    for n in range(5):
        submit(embedded_server.url, submit_key, sample_application(external_id=f"count-{n}"))

    def summary_stored() -> int:
        answer = httpx.get(embedded_server.url + "/v1/metrics/summary", timeout=10,
                           headers={"Authorization": f"Bearer {operator_key}"})
        return int(answer.json()["counts"]["by_status"].get("stored", 0))

    # Within one refresh: the page shows the number the summary answers once it settles.
    page.wait_for_function(
        "() => Number(document.querySelector(\"#by-status tr[data-key='stored'] td.num\")"
        "?.textContent.replace(/,/g, '')) >= 5", timeout=WAIT_MS)
    expected = summary_stored()
    page.wait_for_function(
        "n => Number(document.querySelector(\"#by-status tr[data-key='stored'] td.num\")"
        ".textContent.replace(/,/g, '')) === n", arg=expected, timeout=WAIT_MS)
    assert page.get_attribute("[data-chart=throughput]", "data-points") not in (None, "0")


def test_an_applicant_name_holding_html_is_shown_as_text(
    embedded_server, operator_key, submit_key, page, recorder: Recorder
):
    log_in(page, embedded_server.url, operator_key)
    rejected = sample_application(applicant__first_name=HOSTILE_NAME, loan__amount=500.0)

    app_id = submit(embedded_server.url, submit_key, rejected)

    row = page.wait_for_selector(f"#log-rows tr:has(td.id[title='{app_id}'])")
    assert HOSTILE_NAME in row.query_selector("td.name").inner_text()
    assert page.query_selector("#log-rows img") is None
    assert page.evaluate("() => window.__xss") is None
    assert recorder.page_errors == []


def test_the_log_filters_by_kind_and_searches_text(
    embedded_server, operator_key, submit_key, page
):
    log_in(page, embedded_server.url, operator_key)
    too_small = submit(embedded_server.url, submit_key,
                       sample_application(loan__amount=500.0, external_id="find-me-small"))
    too_big = submit(embedded_server.url, submit_key,
                     sample_application(loan__amount=500_000.0, external_id="find-me-big"))
    for app_id in (too_small, too_big):
        page.wait_for_selector(f"#log-rows td.id[title='{app_id}']")

    page.select_option("#log-kind", "failure")
    page.wait_for_selector(f"#log-rows td.id[title='{too_small}']", state="detached")
    page.select_option("#log-kind", "rejection")
    page.fill("#log-search", "above_maximum")

    page.wait_for_selector(f"#log-rows td.id[title='{too_small}']", state="detached")
    assert page.is_visible(f"#log-rows td.id[title='{too_big}']")


def test_a_dashboard_opened_late_draws_the_recent_past(
    embedded_server, operator_key, submit_key, page
):
    submit(embedded_server.url, submit_key, sample_application(external_id="before-the-page"))
    # No live feed at all: whatever the charts draw comes from the history request.
    page.route_web_socket(re.compile(r"/v1/live$"), lambda ws: ws.close())

    log_in(page, embedded_server.url, operator_key)

    page.wait_for_function(
        "() => document.querySelector('[data-chart=throughput]').dataset.points >= 60")
    assert page.is_hidden("#history-status")
