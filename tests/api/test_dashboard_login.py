"""Dashboard login: a one-time login code or a read key, posted, becomes an HttpOnly,
SameSite=Strict cookie naming a server-side session (the app in-process; a second
`loanflow serve` process where a session must cross processes)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from loanflow.apikeys import hash_key
from loanflow.cli.login import issue_login_code
from loanflow.logins import LOGIN_CODE_TTL_S, hash_secret, new_login_code
from loanflow.pii import load_cipher
from tests.api.inprocess import InProcessApp, app_fixture, client_fixture, keys_fixture
from tests.conftest import Deployment, ServerProcess, auth

app = app_fixture()
client = client_fixture()
keys = keys_fixture()


@pytest.fixture
def browser(app: InProcessApp) -> Iterator[httpx.Client]:
    """A client that keeps cookies and does not follow redirects, like a careful browser."""
    with app.client(timeout=10, follow_redirects=False) as c:
        yield c


@pytest.fixture(scope="module")
def second_server(deployment: Deployment) -> Iterator[ServerProcess]:
    """Another API process over the same store: another host, as far as sessions go."""
    srv = ServerProcess(deployment).start()
    yield srv
    srv.stop()


def log_in(browser: httpx.Client, token: str) -> httpx.Response:
    """What the sign-in form (and the page, for a printed link's code) posts."""
    return browser.post("/login", data={"token": token})


def login_code(app: InProcessApp) -> str:
    """A one-time code, as `loanflow login-code` makes and prints it."""
    return app.call(functools.partial(issue_login_code, label="test"), app.runtime.store)


def test_without_a_session_the_dashboard_shows_the_login_form(browser):
    page = browser.get("/")

    assert page.status_code == 200
    assert 'action="/login"' in page.text


def test_signing_in_sets_a_strict_http_only_cookie_that_holds_no_key(browser, keys):
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


def test_a_posted_login_code_opens_a_read_and_operate_session(browser, app):
    answer = log_in(browser, login_code(app))

    assert answer.status_code == 303 and answer.headers["location"] == "/"
    session = browser.get("/v1/session").json()
    assert session["scopes"] == ["operate", "read"] and session["csrf"]
    assert session["key_id"].startswith("login-")


def test_a_session_opened_on_one_process_works_on_another_until_logged_out_there(
    browser, second_server, app
):
    log_in(browser, login_code(app))
    cookie = browser.cookies["loanflow_session"]
    csrf = browser.get("/v1/session").json()["csrf"]

    with httpx.Client(base_url=second_server.url, timeout=10) as elsewhere:
        elsewhere.cookies.set("loanflow_session", cookie)
        there = elsewhere.get("/v1/session")
        logged_out = elsewhere.post("/logout", headers={"X-CSRF-Token": csrf})

    assert there.status_code == 200 and there.json()["csrf"] == csrf
    assert logged_out.status_code == 303
    assert browser.get("/v1/session").status_code == 401


def test_a_login_code_works_only_once(browser, app):
    code = login_code(app)
    log_in(browser, code)

    with app.client(timeout=10) as someone_else:
        again = log_in(someone_else, code)

    assert again.status_code == 303 and again.headers["location"] == "/?failed=used"
    assert "set-cookie" not in again.headers


def test_an_expired_login_code_is_refused(browser, app):
    made_ns = time.time_ns() - (LOGIN_CODE_TTL_S + 1) * 1_000_000_000
    code, secret = new_login_code(label="made 10 minutes ago", now_ns=made_ns)
    app.call(app.runtime.store.create_login_code, code, hash_secret(secret))

    answer = log_in(browser, secret)

    assert answer.headers["location"] == "/?failed=expired"
    assert "set-cookie" not in answer.headers


@pytest.mark.parametrize("query", ["code", "token"])
def test_a_get_with_a_code_signs_nobody_in_and_leaves_the_code_unused(
    browser, app, keys, query
):
    code = login_code(app)

    answer = browser.get("/", params={query: code})
    with_key = browser.get("/", params={"token": keys["read"]})

    assert 'action="/login"' in answer.text and 'action="/login"' in with_key.text
    assert "set-cookie" not in answer.headers and "set-cookie" not in with_key.headers
    assert log_in(browser, code).headers["location"] == "/"


def test_a_sign_in_posted_from_another_site_is_refused(browser, app):
    code = login_code(app)

    answer = browser.post("/login", data={"token": code},
                          headers={"Sec-Fetch-Site": "cross-site"})

    assert answer.headers["location"] == "/?failed=cross-site"
    assert "set-cookie" not in answer.headers
    assert log_in(browser, code).headers["location"] == "/"


@pytest.mark.parametrize("token", ["lf_000000000000_nope", "lc_nope", "", "é"])
def test_an_unknown_code_or_key_is_sent_back_to_the_login_form(browser, token):
    answer = log_in(browser, token)

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


@pytest.mark.parametrize("csrf", ["é".encode("latin-1"), "é".encode(), b"x" * 43])
def test_a_wrong_or_non_ascii_csrf_header_is_refused_not_an_error(browser, keys, csrf):
    log_in(browser, keys["read"])

    answer = browser.post("/logout", headers={"X-CSRF-Token": csrf})

    assert answer.status_code == 403
    assert browser.get("/v1/session").status_code == 200


@pytest.mark.parametrize("page", ["/", "/static/login.html"])
def test_pages_carry_a_strict_csp_and_no_inline_script(browser, page):
    answer = browser.get(page)

    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", answer.text) is None


def test_logging_out_revokes_the_session_so_its_old_cookie_is_refused(browser, app, keys):
    log_in(browser, keys["read"])
    cookie = browser.cookies["loanflow_session"]
    csrf = browser.get("/v1/session").json()["csrf"]

    browser.post("/logout", headers={"X-CSRF-Token": csrf})

    with app.client(timeout=10) as kept_a_copy:
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
    browser, app: InProcessApp
):
    # Whoever reads the store learns the signing secret, but only hashes of tokens.
    secret = app.call(app.runtime.store.session_secret, b"unused", 0)
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
    app, cookie, method, path, status
):
    answer = app.request(method, path, headers={"Cookie": cookie})

    assert answer.status_code == status
    assert 'action="/login"' in answer.text if path == "/" else True


@pytest.mark.parametrize("cookie", ["loanflow_session=abc.\xe9", "loanflow_session=a.b"])
def test_the_live_feed_refuses_a_malformed_cookie_cleanly(app, cookie):
    # Closed before it is accepted: a server answers the handshake 403, not a 500.
    answer = app.websocket_handshake("/v1/live", [(b"cookie", cookie.encode("latin-1"))])

    assert answer == "websocket.close"
