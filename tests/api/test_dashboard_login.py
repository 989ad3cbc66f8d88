"""Dashboard login: a token or read key becomes an HttpOnly, SameSite=Strict session cookie."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import ServerProcess, auth


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
