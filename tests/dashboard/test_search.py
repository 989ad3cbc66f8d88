"""The search view against a real server: filters in the page's address (shared links,
reloads, back and forward), results from GET /v1/applications, and an application's
timeline, trace and masked data in the drawer."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from playwright.sync_api import Page

from loanflow.api import search
from tests.conftest import auth, sample_application, wait_for_status
from tests.dashboard.browser import FAIL_MARKER, Recorder, log_in
from tests.dashboard.load import processed, submit

INDEX = Path(__file__).parents[2] / "src/loanflow/dashboard/static/index.html"
#: Debts this high put debt-to-income above the decline limit: route decline_recommended.
DECLINE = {"applicant__monthly_debt_payments": 6000.0}
#: A poison application is retried once (max_attempts=2) before it is dead-lettered.
DEAD_LETTER_WAIT_S = 15.0


def tag(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def shown_ids(page: Page) -> list[str]:
    return page.eval_on_selector_all("#search-rows tr", "rows => rows.map(r => r.dataset.id)")


def address(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def wait_for_results(page: Page, ids: list[str]) -> None:
    """Until the table shows exactly `ids` (newest first), whatever it showed before."""
    page.wait_for_function(
        "ids => JSON.stringify([...document.querySelectorAll('#search-rows tr')]"
        ".map(r => r.dataset.id)) === JSON.stringify(ids)"
        " && !document.querySelector('#search-rows').closest('table').hasAttribute('aria-busy')",
        arg=ids)


def test_the_filters_offer_exactly_the_values_the_api_takes():
    html = INDEX.read_text()

    def options(name: str) -> tuple[str, ...]:
        select = re.search(rf'<select name="{name}">(.*?)</select>', html, re.S)
        assert select, f"expected a <select name={name}> in the search form"
        return tuple(v for v in re.findall(r'<option value="([^"]*)"', select.group(1)) if v)

    assert options("status") == search.STORED_STATUSES
    assert options("route") == search.ROUTES
    assert options("channel") == search.CHANNELS
    assert options("review") == search.REVIEWS


def test_a_search_by_external_id_is_in_the_address_and_survives_a_reload(
    embedded_server, operator_key, submit_key, page, recorder: Recorder
):
    external = tag("ext")
    app_id = processed(embedded_server.url, submit_key, sample_application(external_id=external))
    # Another application whose external id only starts the same: not a match.
    processed(embedded_server.url, submit_key, sample_application(external_id=external + "0"))
    log_in(page, embedded_server.url, operator_key)

    page.click("#views [data-view=search]")
    page.fill("#search-form [name=external_id]", external)
    page.click("#search-form button[type=submit]")

    wait_for_results(page, [app_id])
    assert address(page) == {"view": ["search"], "external_id": [external]}
    page.reload()
    page.wait_for_selector("body[data-ready]")
    wait_for_results(page, [app_id])
    assert page.input_value("#search-form [name=external_id]") == external
    assert page.is_visible("#view-search") and page.is_hidden("#view-live")
    assert recorder.page_errors == []
    assert recorder.unexpected_failures() == []


def test_a_search_by_route_keeps_its_filters_through_reload_and_history(
    embedded_server, operator_key, submit_key, page, recorder: Recorder
):
    partner = tag("route")
    review_id = processed(embedded_server.url, submit_key, sample_application(partner_id=partner))
    decline_id = processed(embedded_server.url, submit_key,
                           sample_application(partner_id=partner, **DECLINE))
    log_in(page, embedded_server.url, operator_key)
    page.goto(embedded_server.url + "/?" + urlencode({"view": "search", "partner_id": partner}))
    wait_for_results(page, [decline_id, review_id])  # newest first

    page.select_option("#search-form [name=route]", "decline_recommended")
    page.click("#search-form button[type=submit]")

    wait_for_results(page, [decline_id])
    assert page.text_content(f"#search-rows tr[data-id='{decline_id}'] td:nth-child(4)") == (
        "decline_recommended")
    assert address(page) == {"view": ["search"], "route": ["decline_recommended"],
                             "partner_id": [partner]}
    page.reload()
    page.wait_for_selector("body[data-ready]")
    wait_for_results(page, [decline_id])
    assert page.input_value("#search-form [name=route]") == "decline_recommended"
    page.go_back()  # the search before the route was chosen
    wait_for_results(page, [decline_id, review_id])
    assert page.input_value("#search-form [name=route]") == ""
    page.select_option("#search-form [name=route]", "manual_review")
    page.click("#search-form button[type=submit]")
    wait_for_results(page, [review_id])
    assert recorder.page_errors == []


def test_an_applications_timeline_opens_in_the_drawer_in_order(
    embedded_server, operator_key, submit_key, page, recorder: Recorder
):
    # Given an application that failed every attempt and was discarded by an operator
    external = FAIL_MARKER + tag("timeline")
    app_id = submit(embedded_server.url, submit_key, sample_application(external_id=external))
    with httpx.Client(base_url=embedded_server.url, timeout=10) as client:
        status = wait_for_status(client, submit_key, app_id, timeout_s=DEAD_LETTER_WAIT_S)
        assert status["status"] == "dead_lettered"
        discarded = client.post(f"/v1/dead-letters/{app_id}/discard", headers=auth(operator_key),
                                json={"reason": "test traffic"})
        assert discarded.status_code == 200, discarded.text
    log_in(page, embedded_server.url, operator_key)
    page.goto(embedded_server.url + "/?" + urlencode({"view": "search", "external_id": external}))
    wait_for_results(page, [app_id])

    # When its row is opened
    page.click(f"#search-rows tr[data-id='{app_id}'] button.link")

    # Then the drawer shows what happened to it, oldest first
    page.wait_for_selector("#ap-timeline li[data-kind=discarded]")
    kinds = page.eval_on_selector_all("#ap-timeline li", "items => items.map(i => i.dataset.kind)")
    assert kinds == ["received", "attempt_failed", "attempt_failed", "dead_lettered", "discarded"]
    assert page.text_content("#dr-id") == app_id
    assert "test traffic" in page.text_content("#ap-timeline li[data-kind=discarded]")
    assert page.is_hidden("#dr-dead-letter") and page.is_visible("#dr-app")
    page.keyboard.press("Escape")
    page.wait_for_selector("#drawer", state="hidden")
    assert recorder.page_errors == []
    assert recorder.unexpected_failures() == []


def test_a_stored_applications_drawer_shows_its_trace_and_masked_data(
    embedded_server, operator_key, submit_key, page, recorder: Recorder
):
    external = tag("trace")
    app_id = processed(embedded_server.url, submit_key, sample_application(external_id=external))
    log_in(page, embedded_server.url, operator_key)
    page.goto(embedded_server.url + "/?" + urlencode({"view": "search", "external_id": external}))
    wait_for_results(page, [app_id])

    page.click(f"#search-rows tr[data-id='{app_id}'] td:first-child")

    page.wait_for_selector("#ap-timeline li[data-kind=stored]")
    kinds = page.eval_on_selector_all("#ap-timeline li", "items => items.map(i => i.dataset.kind)")
    assert kinds == ["received", "stored"]
    figures = page.eval_on_selector_all("#ap-trace tr td:first-child",
                                        "cells => cells.map(c => c.textContent)")
    assert {"dti_bps", "monthly_payment_cents", "age_years"} <= set(figures)
    shown = page.text_content("#ap-application") or ""
    assert "***-**-6789" in shown
    assert "123-45-6789" not in shown and "1985-12-10" not in shown
    assert "Open" in (page.text_content("#ap-review-text") or "")
    assert page.is_visible("#ap-decide")  # the operate scope may decide here too
    assert recorder.page_errors == []


def test_a_shared_search_link_opens_on_its_search_after_the_sign_in(
    embedded_server, operator_key, submit_key, page
):
    external = tag("shared")
    app_id = processed(embedded_server.url, submit_key, sample_application(external_id=external))
    shared = "/?" + urlencode({"view": "search", "external_id": external})

    page.goto(embedded_server.url + shared)  # not signed in: the login page, at that address
    page.fill("#token", operator_key)
    page.click("button[type=submit]")

    page.wait_for_selector("body[data-ready]")
    wait_for_results(page, [app_id])
    assert address(page) == {"view": ["search"], "external_id": [external]}
