"""Signing in and out through the page, as an operator does."""

from __future__ import annotations

from tests.dashboard.browser import log_in


def test_an_unknown_token_shows_why_the_sign_in_failed(embedded_server, page):
    page.goto(embedded_server.url + "/")
    page.fill("#token", "lf_000000000000_not-a-key")
    page.click("button[type=submit]")

    page.wait_for_selector("#failed", state="visible")
    assert page.url.endswith("/?failed=1")
    assert page.locator("body[data-ready]").count() == 0


def test_a_good_key_in_the_form_shows_the_dashboard(embedded_server, operator_key, page):
    page.goto(embedded_server.url + "/")
    page.fill("#token", operator_key)
    page.click("button[type=submit]")

    page.wait_for_selector("body[data-ready]")
    assert "operate" in page.inner_text("#who")
    assert page.is_visible("[data-tile=received]")


def test_sign_out_ends_the_session_and_returns_to_the_login_form(
    embedded_server, operator_key, page
):
    log_in(page, embedded_server.url, operator_key)

    page.click("#signout")

    page.wait_for_selector("form[action='/login']")
    assert page.request.get(embedded_server.url + "/v1/session").status == 401
