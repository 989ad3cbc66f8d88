"""Signing in and out through the page, as an operator does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page

from loanflow.backends import make_store
from loanflow.logins import LOGIN_CODE_TTL_S, hash_secret, new_login_code
from loanflow.settings import Settings
from loanflow.store.base import Store
from tests.conftest import Deployment, ServerProcess, cli
from tests.dashboard.browser import log_in

T = TypeVar("T")


def with_store(deployment: Deployment, use: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        store = make_store(Settings(data_dir=deployment.data_dir,
                                    store_url=deployment.store_url))
        await store.open()
        try:
            return await use(store)
        finally:
            await store.close()

    # In a thread of its own: Playwright's sync API keeps an event loop on this one.
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, run()).result()


def printed_link(server: ServerProcess) -> tuple[str, str]:
    """(link, code) as `loanflow login-code` prints them."""
    link_line, code = cli(server.deployment, "login-code", "--port", str(server.port)
                          ).strip().splitlines()
    return link_line.split()[1], code


def test_the_printed_link_signs_in_by_posting_its_code_once(embedded_server, page: Page):
    link, code = printed_link(embedded_server)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)

    page.goto(link)

    page.wait_for_selector("body[data-ready]")
    assert link == f"{embedded_server.url}/#code={code}"
    assert posts == [embedded_server.url + "/login"]
    assert code not in page.url
    assert "operate" in page.inner_text("#who")


@pytest.mark.parametrize("where", ["new tab", "same tab"])
def test_a_link_opened_while_signed_in_drops_its_code_from_the_address_bar(
    embedded_server, operator_key, context: BrowserContext, page: Page, where: str
):
    log_in(page, embedded_server.url, operator_key)
    link, code = printed_link(embedded_server)
    tab = context.new_page() if where == "new tab" else page

    tab.goto(link)

    tab.wait_for_selector("body[data-ready]")
    tab.wait_for_function("() => !window.location.hash.includes('code=')")
    assert code not in tab.url


def test_a_used_code_link_says_the_code_was_used(embedded_server, page: Page):
    link, code = printed_link(embedded_server)
    httpx.post(embedded_server.url + "/login", data={"token": code}, timeout=10)

    page.goto(link)

    page.wait_for_selector("[data-reason=used]", state="visible")
    assert "login-code" in page.inner_text("[data-reason=used]")
    assert page.locator("body[data-ready]").count() == 0


def test_an_expired_code_link_says_the_code_expired(embedded_server, page: Page):
    made_ns = time.time_ns() - (LOGIN_CODE_TTL_S + 1) * 1_000_000_000
    code, secret = new_login_code(label="", now_ns=made_ns)
    with_store(embedded_server.deployment,
               lambda store: store.create_login_code(code, hash_secret(secret)))

    page.goto(f"{embedded_server.url}/#code={secret}")

    page.wait_for_selector("[data-reason=expired]", state="visible")
    assert page.locator("body[data-ready]").count() == 0


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


def test_sign_out_revokes_the_session_so_its_old_cookie_is_refused(
    embedded_server, operator_key, context: BrowserContext, page: Page
):
    log_in(page, embedded_server.url, operator_key)
    kept = context.cookies()

    page.click("#signout")

    page.wait_for_selector("form[action='/login']")
    assert page.request.get(embedded_server.url + "/v1/session").status == 401
    context.add_cookies(kept)  # as if it had been copied before signing out
    assert page.request.get(embedded_server.url + "/v1/session").status == 401
