"""Manual review from the page against a real server: inspect, replay, discard, bulk."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from playwright.sync_api import Page

from tests.conftest import sample_application, wait_for_status
from tests.dashboard.browser import FAIL_MARKER, csrf, log_in
from tests.dashboard.load import submit

#: A poison application is retried once (max_attempts=2) before it is dead-lettered.
DEAD_LETTER_WAIT_MS = 15_000


def poison(server, key: str, **changes) -> str:
    """An application that fails every attempt (the server's test-only fail marker)."""
    tag = uuid.uuid4().hex[:8]
    return submit(server.url, key, sample_application(external_id=FAIL_MARKER + tag, **changes))


def wait_for_row(page: Page, app_id: str):
    """The live log says when it is dead-lettered; then the table is asked again."""
    page.wait_for_selector(f"#log-rows tr[data-kind=dead_letter]:has(td.id[title='{app_id}'])",
                           timeout=DEAD_LETTER_WAIT_MS)
    page.click("#dl-refresh")
    return page.wait_for_selector(f"#dl-rows tr[data-id='{app_id}']")


@contextmanager
def httpx_client(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def test_a_corrected_replay_from_the_drawer_is_stored(
    embedded_server, operator_key, submit_key, page
):
    log_in(page, embedded_server.url, operator_key)
    app_id = poison(embedded_server, submit_key)
    wait_for_row(page, app_id).query_selector("text=Inspect").click()
    page.wait_for_selector("#dr-application:has-text('applicant')")

    page.check("#dr-edit")
    page.fill("#dr-json", "{not json")
    assert page.is_disabled("#dr-replay") and page.is_visible("#dr-json-error")
    corrected = sample_application(external_id="corrected-" + app_id[-8:])
    page.fill("#dr-json", json.dumps(corrected))
    with page.expect_request(lambda r: r.url.endswith(f"/{app_id}/replay")) as sent:
        page.click("#dr-replay")

    request = sent.value
    assert request.headers["x-csrf-token"] == csrf(page, embedded_server.url)
    assert request.post_data_json == {"application": corrected}
    assert request.response().status == 202
    page.wait_for_selector(f"#dl-rows tr[data-id='{app_id}']", state="detached")
    with httpx_client(embedded_server) as client:
        assert wait_for_status(client, operator_key, app_id)["status"] == "stored"


def test_replay_from_the_table_sends_the_csrf_header(
    embedded_server, operator_key, submit_key, page
):
    log_in(page, embedded_server.url, operator_key)
    app_id = poison(embedded_server, submit_key)
    row = wait_for_row(page, app_id)

    with page.expect_request(lambda r: r.url.endswith(f"/{app_id}/replay")) as sent:
        row.query_selector("[data-action=replay]").click()

    assert sent.value.headers["x-csrf-token"] == csrf(page, embedded_server.url)
    assert sent.value.response().status == 202
    page.wait_for_selector("#toast:has-text('Replayed')")


def test_discard_needs_a_reason_and_sends_it_with_the_csrf_header(
    embedded_server, operator_key, submit_key, page
):
    log_in(page, embedded_server.url, operator_key)
    app_id = poison(embedded_server, submit_key)
    wait_for_row(page, app_id).query_selector("[data-action=discard]").click()
    page.wait_for_selector("#dr-application:has-text('applicant')")
    assert page.is_disabled("#dr-discard")

    page.fill("#dr-reason", "duplicate of a stored application")
    with page.expect_request(lambda r: r.url.endswith(f"/{app_id}/discard")) as sent:
        page.click("#dr-discard")

    assert sent.value.headers["x-csrf-token"] == csrf(page, embedded_server.url)
    assert sent.value.post_data_json == {"reason": "duplicate of a stored application"}
    assert sent.value.response().status == 200
    page.wait_for_selector(f"#dl-rows tr[data-id='{app_id}']", state="detached")


def test_bulk_discard_shows_the_dry_run_count_before_it_acts(
    embedded_server, operator_key, submit_key, page
):
    log_in(page, embedded_server.url, operator_key)
    partner = "bulk-" + uuid.uuid4().hex[:8]
    ids = [poison(embedded_server, submit_key, partner_id=partner) for _ in range(2)]
    for app_id in ids:
        wait_for_row(page, app_id)
    page.fill("#dl-filter [name=partner_id]", partner)
    page.click("#dl-filter button[type=submit]")
    page.wait_for_function("() => document.querySelectorAll('#dl-rows tr').length === 2")

    page.click("#bulk-discard")
    page.wait_for_selector("#bulk-count[data-count='2']")
    assert page.is_disabled("#bulk-confirm")  # a discard needs a reason
    page.fill("#bulk-reason", "test traffic")
    with page.expect_request(lambda r: r.url.endswith("/v1/dead-letters/discard")) as sent:
        page.click("#bulk-confirm")

    assert sent.value.post_data_json == {
        "filter": {"partner_id": partner}, "dry_run": False, "reason": "test traffic"}
    assert sent.value.headers["x-csrf-token"] == csrf(page, embedded_server.url)
    page.wait_for_selector("#toast:has-text('Discarded 2')")
    page.wait_for_selector("#dl-empty:not([hidden])")


def test_without_the_operate_scope_no_action_is_offered(
    embedded_server, reader_key, submit_key, page
):
    log_in(page, embedded_server.url, reader_key)
    app_id = poison(embedded_server, submit_key)
    row = wait_for_row(page, app_id)

    assert row.query_selector("[data-action]") is None
    assert page.is_hidden("#bulk-replay") and page.is_hidden("#bulk-discard")
    assert page.is_visible("#dl-readonly")
    row.query_selector("text=Inspect").click()
    page.wait_for_selector("#dr-application:has-text('applicant')")
    assert page.is_hidden("#dr-actions")
