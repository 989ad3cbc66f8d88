"""The API keys view (scope admin): revoked from its row, the API refuses a key; a session
without admin is told what it needs."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from playwright.sync_api import Page, Route

from tests.conftest import auth, sample_application
from tests.dashboard.browser import Recorder, csrf, log_in


def submission(base_url: str, key: str, **changes: Any) -> httpx.Response:
    return httpx.post(f"{base_url}/v1/applications", json=sample_application(**changes),
                      headers=auth(key, **{"Idempotency-Key": str(uuid.uuid4())}), timeout=10)


def open_keys(page: Page, base_url: str, key: str) -> None:
    log_in(page, base_url, key)
    page.click("#views [data-view=keys]")
    page.wait_for_selector("#keys-rows tr")


def test_a_key_revoked_from_its_row_is_refused_by_the_api(
    embedded_server, admin_key, page: Page, recorder: Recorder
):
    made = httpx.post(embedded_server.url + "/v1/keys", headers=auth(admin_key),
                      json={"scopes": ["submit", "read"], "label": "to revoke"}).json()
    key_id, secret = made["key"]["id"], made["secret"]
    assert submission(embedded_server.url, secret).status_code == 202  # in use, so cached
    open_keys(page, embedded_server.url, admin_key)
    row = f"#keys-rows tr[data-id='{key_id}']"

    page.click(f"{row} [data-action=revoke]")
    page.wait_for_selector("#revoke[open]")
    assert key_id in page.inner_text("#revoke-target")
    with page.expect_request(lambda r: r.url.endswith(f"/v1/keys/{key_id}/revoke")) as sent:
        page.click("#revoke-confirm")

    assert sent.value.headers["x-csrf-token"] == csrf(page, embedded_server.url)
    page.wait_for_selector(f"{row}[data-state=revoked]")
    page.wait_for_selector("#revoke", state="hidden")
    assert page.query_selector(f"{row} [data-action=revoke]") is None
    assert submission(embedded_server.url, secret).status_code == 401
    page.click("#views [data-view=audit]")
    page.wait_for_selector(f"#au-rows tr[data-target='{key_id}'][data-action=key_revoked]")
    assert recorder.page_errors == []
    assert recorder.unexpected_failures() == []


def test_a_session_without_admin_is_told_what_it_needs_and_asks_nothing(
    embedded_server, operator_key, page: Page, recorder: Recorder
):
    log_in(page, embedded_server.url, operator_key)
    assert page.is_hidden("#views [data-view=keys]")

    page.goto(embedded_server.url + "/?view=keys")
    page.wait_for_selector("#keys-refused:not([hidden])")

    assert "admin" in page.inner_text("#keys-refused")
    assert page.inner_text("#keys-scopes") == "operate, read"
    assert page.is_hidden("#keys-list")
    assert not [url for url in recorder.requests if "/v1/keys" in url]
    assert recorder.page_errors == []
    assert recorder.unexpected_failures() == []


def test_a_403_the_page_did_not_expect_is_explained_too(
    embedded_server, operator_key, page: Page, recorder: Recorder
):
    def claims_admin(route: Route) -> None:
        answer = route.fetch()
        route.fulfill(response=answer, json={**answer.json(),
                                             "scopes": ["admin", "operate", "read"]})

    page.route("**/v1/session", claims_admin)  # the page believes admin; the server does not
    log_in(page, embedded_server.url, operator_key)

    page.click("#views [data-view=keys]")

    page.wait_for_selector("#keys-refused:not([hidden])")
    assert page.is_hidden("#keys-list") and page.is_hidden("#keys-status")
    assert [f for f in recorder.unexpected_failures() if "/v1/keys" not in f] == []
    assert [f for f in recorder.failed if "/v1/keys" in f] == [f"403 {embedded_server.url}/v1/keys"]
    assert recorder.page_errors == []
