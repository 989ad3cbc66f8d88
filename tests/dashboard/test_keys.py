"""The API keys view (scope admin): a key made from the form works at once and is listed;
its secret is shown once and leaves no trace; revoked from its row, the API refuses it; a
422 is shown at its field; a session without admin is told what it needs."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from playwright.sync_api import BrowserContext, Page, Route

from tests.conftest import auth, sample_application
from tests.dashboard.browser import Recorder, csrf, log_in

#: Where the secret could end up: the markup, every input's value, the address, storage.
TRACES = """() => [document.documentElement.outerHTML,
    ...[...document.querySelectorAll('input, textarea')].map(i => i.value),
    window.location.href, JSON.stringify({...localStorage}), JSON.stringify({...sessionStorage})]"""


def submission(base_url: str, key: str, **changes: Any) -> httpx.Response:
    return httpx.post(f"{base_url}/v1/applications", json=sample_application(**changes),
                      headers=auth(key, **{"Idempotency-Key": str(uuid.uuid4())}), timeout=10)


def open_keys(page: Page, base_url: str, key: str) -> None:
    log_in(page, base_url, key)
    page.click("#views [data-view=keys]")
    page.wait_for_selector("#keys-rows tr")


def make_from_form(page: Page, **fields: str) -> tuple[str, str]:
    """Fill the form and make the key; (its id, its secret as the box shows it)."""
    for name, value in fields.items():
        page.fill(f"#key-form [name={name}]", value)
    with page.expect_response(lambda r: r.url.endswith("/v1/keys")
                              and r.request.method == "POST") as made:
        page.click("#key-make")
    assert made.value.status == 201, made.value.text()
    secret = page.input_value("#key-secret-value")
    return made.value.json()["key"]["id"], secret


def test_a_key_made_from_the_form_submits_at_once_and_is_listed(
    embedded_server, admin_key, page: Page, context: BrowserContext, recorder: Recorder
):
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=embedded_server.url)
    open_keys(page, embedded_server.url, admin_key)
    partner = "acme-" + uuid.uuid4().hex[:6]

    key_id, secret = make_from_form(page, label="Acme Brokers", partner_id=partner,
                                    rate_per_s="50", expires_in_days="30")

    assert secret.startswith(f"lf_{key_id}_")
    assert "will not be shown again" in page.inner_text("#key-secret")
    assert page.is_disabled("#key-make")  # one key at a time: this secret first
    page.click("#key-copy")
    page.wait_for_selector("#key-copy-status:has-text('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    row = page.wait_for_selector(f"#keys-rows tr[data-id='{key_id}'][data-state=active]")
    cells = row.eval_on_selector_all("td", "tds => tds.map(td => td.textContent)")
    assert cells[1:6] == ["Acme Brokers", "read, submit", "active", partner, "50/s, burst 50"]
    assert page.eval_on_selector("#keys-rows tr", "tr => tr.dataset.id") == key_id  # newest first
    # A real submission with the secret: for its partner only.
    assert submission(embedded_server.url, secret, partner_id=partner).status_code == 202
    assert submission(embedded_server.url, secret, partner_id="other").status_code == 422
    listed = httpx.get(embedded_server.url + "/v1/keys", headers=auth(admin_key)).json()["items"]
    assert [k["label"] for k in listed if k["id"] == key_id] == ["Acme Brokers"]
    assert recorder.page_errors == []
    assert recorder.unexpected_failures() == []


def test_the_secret_leaves_no_trace_once_dismissed_or_the_view_is_left(
    embedded_server, admin_key, page: Page
):
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    open_keys(page, embedded_server.url, admin_key)

    _, dismissed = make_from_form(page, label="dismissed")
    page.click("#key-dismiss")
    _, left = make_from_form(page, label="left behind")
    page.click("#views [data-view=audit]")
    page.go_back()  # the Keys view again
    page.wait_for_selector("#keys-rows tr")

    assert page.is_hidden("#key-secret") and page.is_enabled("#key-make")
    assert page.query_selector("#key-secret-value") is None
    traces = page.evaluate(TRACES)
    for secret in (dismissed, left):
        assert not [t for t in traces if secret in t]
        assert not [line for line in console if secret in line]


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


def test_a_refused_field_is_shown_at_that_field_and_nothing_is_made(
    embedded_server, admin_key, page: Page, recorder: Recorder
):
    open_keys(page, embedded_server.url, admin_key)
    listed = page.eval_on_selector_all("#keys-rows tr", "trs => trs.length")

    page.fill("#key-form [name=label]", "ten thousand days")
    page.fill("#key-form [name=expires_in_days]", "10000")
    with page.expect_response(lambda r: r.url.endswith("/v1/keys")
                              and r.request.method == "POST") as answer:
        page.click("#key-make")

    assert answer.value.status == 422
    error = page.wait_for_selector("#key-error-expires_in_days:not([hidden])")
    assert "3650" in (error.text_content() or "")
    assert page.get_attribute("#key-form [name=expires_in_days]", "aria-invalid") == "true"
    assert page.is_hidden("#key-error-label") and page.is_hidden("#key-secret")
    assert page.input_value("#key-form [name=label]") == "ten thousand days"  # kept to fix
    assert page.eval_on_selector_all("#keys-rows tr", "trs => trs.length") == listed
    page.fill("#key-form [name=expires_in_days]", "365")  # correcting it clears the mark
    assert page.is_hidden("#key-error-expires_in_days")
    assert recorder.page_errors == []
    # The 422 (and the browser's console line about it) is what this test provokes.
    assert [f for f in recorder.unexpected_failures() if "422" not in f] == []


def test_a_session_without_admin_is_told_what_it_needs_and_asks_nothing(
    embedded_server, operator_key, page: Page, recorder: Recorder
):
    log_in(page, embedded_server.url, operator_key)
    assert page.is_hidden("#views [data-view=keys]")

    page.goto(embedded_server.url + "/?view=keys")
    page.wait_for_selector("#keys-refused:not([hidden])")

    assert "admin" in page.inner_text("#keys-refused")
    assert page.inner_text("#keys-scopes") == "operate, read"
    assert page.is_hidden("#keys-list") and page.is_hidden("#keys-new")
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
