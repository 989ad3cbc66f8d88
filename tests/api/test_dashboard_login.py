"""Dashboard login: a token or read key becomes an HttpOnly, SameSite=Strict session cookie."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from loanflow.apikeys import hash_key
from loanflow.backends import make_store
from loanflow.pii import load_cipher
from loanflow.settings import Settings
from tests.conftest import Deployment, ServerProcess, auth


@pytest.fixture
def browser(server: ServerProcess):
    """A client that keeps cookies and does not follow redirects, like a careful browser."""
    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as c:
        yield c


def log_in(browser: httpx.Client, token: str) -> httpx.Response:
    return browser.get("/", params={"token": token})


def test_without_a_session_the_dashboard_shows_the_login_form(browser):
    page = browser.get("/")

    assert page.status_code == 200
    assert 'action="/login"' in page.text


def test_the_printed_login_link_sets_a_strict_http_only_cookie_and_drops_the_token(browser, keys):
    answer = log_in(browser, keys["read"])

    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert keys["read"] not in cookie
    assert 'action="/login"' not in browser.get("/").text


def test_the_login_form_posts_a_key_for_a_session(browser, keys):
    answer = browser.post("/login", data={"token": keys["read"]})

    assert answer.status_code == 303
    assert browser.get("/v1/session").json()["scopes"] == ["read"]


def test_an_unknown_token_is_sent_back_to_the_login_form(browser):
    answer = log_in(browser, "lf_000000000000_nope")

    assert answer.headers["location"] == "/?failed=1"
    assert "set-cookie" not in answer.headers


def test_a_key_without_read_scope_cannot_log_in(browser, keys):
    answer = log_in(browser, keys["operate"])

    assert answer.headers["location"] == "/?failed=scope"


def test_the_session_reads_the_api_like_a_read_key(browser, client, keys):
    accepted = client.post("/v1/applications", json={}, headers=auth(
        keys["submit"], **{"Idempotency-Key": "dash-1"}))
    log_in(browser, keys["read"])

    answer = browser.get("/v1/applications/does-not-exist")

    assert accepted.status_code == 422
    assert answer.status_code == 404  # authenticated: past 401/403


def test_a_tampered_cookie_is_refused(browser, keys):
    log_in(browser, keys["read"])
    cookie = browser.cookies["loanflow_session"]
    browser.cookies.set("loanflow_session", cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB"))

    assert browser.get("/v1/session").status_code == 401


def test_a_state_change_by_cookie_needs_the_csrf_token(browser, keys):
    log_in(browser, keys["read"])
    csrf = browser.get("/v1/session").json()["csrf"]

    refused = browser.post("/logout")
    accepted = browser.post("/logout", headers={"X-CSRF-Token": csrf})

    assert refused.status_code == 403
    assert accepted.status_code == 303
    assert 'Max-Age=0' in accepted.headers["set-cookie"] or "expires" in accepted.headers[
        "set-cookie"].lower()


@pytest.mark.parametrize("page", ["/", "/static/login.html"])
def test_pages_carry_a_strict_csp_and_no_inline_script(browser, page):
    answer = browser.get(page)

    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", answer.text) is None


def test_logging_out_revokes_the_session_so_its_old_cookie_is_refused(browser, server, keys):
    log_in(browser, keys["read"])
    cookie = browser.cookies["loanflow_session"]
    csrf = browser.get("/v1/session").json()["csrf"]

    browser.post("/logout", headers={"X-CSRF-Token": csrf})

    with httpx.Client(base_url=server.url, timeout=10) as kept_a_copy:
        kept_a_copy.cookies.set("loanflow_session", cookie)
        assert kept_a_copy.get("/v1/session").status_code == 401


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def test_a_cookie_forged_with_the_pii_key_derived_signature_is_refused(
    browser, deployment: Deployment, keys
):
    # What the data directory (or LOANFLOW_PII_KEY) used to be enough to mint: claims
    # naming a real key by its stored hash, signed with the PII key's session subkey.
    cipher = load_cipher(configured=deployment.pii_key, data_dir=deployment.data_dir,
                         embedded=deployment.mode == "embedded")
    claims = {"key_id": keys["read"].split("_")[1], "key_hash": hash_key(keys["read"]),
              "expires_at_s": int(time.time()) + 3600, "csrf": "x"}
    payload = b64(json.dumps(claims).encode())
    signature = b64(hmac.new(cipher.subkey("session-cookie"), payload, hashlib.sha256).digest())
    browser.cookies.set("loanflow_session", f"{payload.decode()}.{signature.decode()}")

    assert browser.get("/v1/session").status_code == 401


def test_a_cookie_signed_with_the_stored_secret_but_naming_no_session_is_refused(
    browser, deployment: Deployment
):
    # Whoever reads the store learns the signing secret, but only hashes of tokens.
    async def stored_secret() -> bytes:
        store = make_store(Settings(data_dir=deployment.data_dir,
                                    store_url=deployment.store_url))
        await store.open()
        try:
            return await store.session_secret(b"unused", time.time_ns())
        finally:
            await store.close()

    secret = asyncio.run(stored_secret())
    token = secrets.token_urlsafe(32)
    signature = b64(hmac.new(secret, b"cookie:" + token.encode(), hashlib.sha256).digest())
    browser.cookies.set("loanflow_session", f"{token}.{signature.decode()}")

    assert browser.get("/v1/session").status_code == 401


MALFORMED_COOKIES = [
    "loanflow_session=abc.\xe9".encode("latin-1"),
    ("loanflow_session=" + "é" * 43 + "." + "A" * 43).encode(),
    b"loanflow_session=" + b"A" * 43 + b"." + b"A" * 42 + b"\xff",
    b"loanflow_session=...",
    b"loanflow_session=\"" + b"A" * 43 + b"." + b"A" * 43 + b"\"",
]


@pytest.mark.parametrize("cookie", MALFORMED_COOKIES)
@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/", 200), ("GET", "/v1/session", 401), ("GET", "/v1/dead-letters", 401),
    ("POST", "/logout", 401),
])
def test_a_malformed_or_non_ascii_cookie_is_no_session_not_an_error(
    server, cookie, method, path, status
):
    answer = httpx.request(method, server.url + path, headers={"Cookie": cookie}, timeout=10)

    assert answer.status_code == status
    assert 'action="/login"' in answer.text if path == "/" else True


@pytest.mark.parametrize("cookie", ["loanflow_session=abc.\xe9", "loanflow_session=a.b"])
def test_the_live_feed_refuses_a_malformed_cookie_cleanly(server, cookie):
    url = server.url.replace("http://", "ws://") + "/v1/live"
    with pytest.raises((ConnectionClosed, InvalidStatus)) as refused, connect(
        url, additional_headers={"Cookie": cookie}, open_timeout=10
    ) as ws:
        ws.recv(timeout=10)

    if isinstance(refused.value, InvalidStatus):
        assert refused.value.response.status_code < 500
