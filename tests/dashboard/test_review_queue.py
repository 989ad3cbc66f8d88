"""The business review queue from the page: approve or decline with a reason, the row
leaves the queue, the decision is in the audit trail; a decision another operator made
first is said plainly; a read-only session is offered none."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page

from tests.conftest import ServerProcess, auth, create_key, sample_application
from tests.dashboard.browser import Recorder, csrf, log_in
from tests.dashboard.load import processed


@pytest.fixture(scope="module")
def queue_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own: the shared one's queue holds every other test's applications
    (the sample application is routed to manual review), and this one's first page must
    show the ones made here."""
    server = ServerProcess(tmp_path_factory.mktemp("queue")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keys(queue_server: ServerProcess) -> dict[str, str]:
    return {scopes: create_key(queue_server.deployment, scopes)
            for scopes in ("submit,read", "read,operate", "read")}


def for_review(server: ServerProcess, keys: dict[str, str]) -> str:
    """A stored application routed to manual review (its debt-to-income is above the
    fast-track limit); its id."""
    app = sample_application(external_id="rq-" + uuid.uuid4().hex[:8])
    return processed(server.url, keys["submit,read"], app)


def open_queue(page: Page, server: ServerProcess, key: str, app_id: str):
    log_in(page, server.url, key)
    page.click("#views [data-view=reviews]")
    return page.wait_for_selector(f"#rq-rows tr[data-id='{app_id}']")


def test_an_approval_from_the_queue_removes_the_row_and_is_in_the_audit_trail(
    queue_server, keys, page, recorder: Recorder
):
    app_id = for_review(queue_server, keys)
    row = open_queue(page, queue_server, keys["read,operate"], app_id)
    assert "fast-track limit" in (row.text_content() or "")  # why it waits for review

    row.query_selector("[data-action=approve]").click()
    page.wait_for_selector("#decide[open]")
    assert page.is_disabled("#decide-confirm")  # a reason is required
    page.fill("#decide-reason", "income verified by phone")
    with page.expect_request(lambda r: r.url.endswith(f"/v1/applications/{app_id}/review")) as sent:
        page.click("#decide-confirm")

    assert sent.value.post_data_json == {"decision": "approve",
                                         "reason": "income verified by phone"}
    assert sent.value.headers["x-csrf-token"] == csrf(page, queue_server.url)
    assert sent.value.response().status == 200
    page.wait_for_selector(f"#rq-rows tr[data-id='{app_id}']", state="detached")
    page.wait_for_selector("#decide", state="hidden")
    page.click("#rq-refresh")  # the server agrees: no longer in the queue
    page.wait_for_selector("#rq-rows:not([aria-busy]) tr, #rq-empty:not([hidden])")
    assert page.query_selector(f"#rq-rows tr[data-id='{app_id}']") is None

    page.click("#views [data-view=audit]")
    entry = page.wait_for_selector(f"#au-rows tr[data-target='{app_id}'][data-action=review]")
    assert "income verified by phone" in (entry.text_content() or "")
    assert "approve" in (entry.text_content() or "")
    audit = httpx.get(queue_server.url + "/v1/audit", headers=auth(keys["read"])).json()["items"]
    assert [(e["action"], e["detail"]["decision"]) for e in audit if e["target"] == app_id] == [
        ("review", "approve")]
    assert recorder.page_errors == []
    assert recorder.unexpected_failures() == []


def test_a_decision_another_operator_made_first_is_shown_and_the_row_leaves(
    queue_server, keys, page, recorder: Recorder
):
    app_id = for_review(queue_server, keys)
    row = open_queue(page, queue_server, keys["read,operate"], app_id)
    other = create_key(queue_server.deployment, "read,operate")
    first = httpx.post(f"{queue_server.url}/v1/applications/{app_id}/review", headers=auth(other),
                       json={"decision": "decline", "reason": "stated income not verifiable"})
    assert first.status_code == 200, first.text

    row.query_selector("[data-action=approve]").click()
    page.fill("#decide-reason", "looks fine to me")
    page.click("#decide-confirm")

    page.wait_for_selector("#decide[data-outcome=conflict]")
    said = page.text_content("#decide-status") or ""
    assert said.startswith("Already decided: declined by ")
    assert "stated income not verifiable" in said
    assert page.is_disabled("#decide-confirm")
    page.wait_for_selector(f"#rq-rows tr[data-id='{app_id}']", state="detached")
    page.click("#decide-cancel")
    page.wait_for_selector("#decide", state="hidden")
    assert recorder.page_errors == []
    # The 409 (and the browser's console line about it) is what this test provokes.
    assert [f for f in recorder.unexpected_failures() if "409" not in f] == []


def test_the_drawer_of_a_queued_application_decides_it_too(queue_server, keys, page):
    app_id = for_review(queue_server, keys)
    row = open_queue(page, queue_server, keys["read,operate"], app_id)

    row.query_selector("text=Open").click()
    page.wait_for_selector("#ap-decide:not([hidden])")
    page.click("#ap-decline")
    page.fill("#decide-reason", "debt too high for the amount")
    page.click("#decide-confirm")

    page.wait_for_selector(f"#rq-rows tr[data-id='{app_id}']", state="detached")
    page.wait_for_selector("#ap-review-text:has-text('Declined by')")
    page.wait_for_selector("#ap-timeline li[data-kind=review_decided]")
    assert page.is_hidden("#ap-decide")


def test_a_read_only_session_sees_the_queue_without_decisions(queue_server, keys, page):
    app_id = for_review(queue_server, keys)
    row = open_queue(page, queue_server, keys["read"], app_id)

    assert row.query_selector("[data-action]") is None
    assert page.is_visible("#rq-readonly")
    row.query_selector("text=Open").click()
    page.wait_for_selector("#ap-review-text:has-text('Open')")
    assert page.is_hidden("#ap-decide")
