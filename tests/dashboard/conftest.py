"""Fixtures for the browser tests: one Chromium per session, a fresh context per test,
a `loanflow serve` per module and keys made by the CLI."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.conftest import ServerProcess, create_key
from tests.dashboard.browser import CHROMIUM, CHROMIUM_ARGS, FAIL_MARKER, WAIT_MS, Recorder


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"expected Debian's Chromium at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as pw:
        # `launch` gives the browser a fresh temporary profile (user-data-dir), removed on close.
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A context per test: no cookie or storage passes from one test to the next."""
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
    ctx.set_default_timeout(WAIT_MS)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def recorder(page: Page) -> Recorder:
    return Recorder.attach(page)


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The root conftest's `embedded_server`, plus the documented test-only fail marker
    and two attempts, so review tests can make a dead letter in a second. One for all the
    browser tests (each makes its own applications and keys), to stay quick."""
    srv = ServerProcess(
        tmp_path_factory.mktemp("dashboard"), fail_marker=FAIL_MARKER, max_attempts="2"
    ).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def operator_key(embedded_server: ServerProcess) -> str:
    return create_key(embedded_server.deployment, "read,operate")


@pytest.fixture(scope="session")
def reader_key(embedded_server: ServerProcess) -> str:
    return create_key(embedded_server.deployment, "read")


@pytest.fixture(scope="session")
def submit_key(embedded_server: ServerProcess) -> str:
    return create_key(embedded_server.deployment, "submit,read")


@pytest.fixture(scope="session")
def admin_key(embedded_server: ServerProcess) -> str:
    """Every scope the page has something for (the Keys view needs admin, signing in read)."""
    return create_key(embedded_server.deployment, "read,operate,admin")
