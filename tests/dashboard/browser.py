"""Driving the dashboard in Debian's Chromium: launch options, login, and a recorder of
what the page asked for and complained about."""

from __future__ import annotations

from dataclasses import dataclass, field

from playwright.sync_api import ConsoleMessage, Page, Request, Response, WebSocket
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

#: Debian's build; Playwright's own browser downloads are not used (no `playwright install`).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: Endpoints the page uses that the backend does not serve yet: a 404 or a refused socket
#: from these is tolerated. Empty (strict) since /v1/metrics/series, /v1/live and
#: /v1/dead-letters landed; list a path here while its backend is missing.
PENDING_ENDPOINTS: tuple[str, ...] = ()
#: Applications whose external_id starts with this fail every attempt (LOANFLOW_FAIL_MARKER).
FAIL_MARKER = "POISON-"
#: Bounded waits, in ms: generous for a loaded CI machine, short enough to fail fast.
WAIT_MS = 10_000
#: How long a test waits for something only the unbuilt backend can produce.
BACKEND_WAIT_MS = 5_000
#: Chromium aborts what is in flight when the machine's addresses change (a CI host's own
#: network, another test's namespaces): the environment's doing, not the page's.
NETWORK_CHANGED = "net::ERR_NETWORK_CHANGED"


def csrf(page: Page, base_url: str) -> str:
    """The session's CSRF token, as the page reads it: what a state change must send."""
    return str(page.request.get(base_url + "/v1/session").json()["csrf"])


def log_in(page: Page, base_url: str, key: str) -> None:
    """Sign in through the form with an API key (or a login code); wait for the dashboard."""
    changed: list[str] = []

    def on_failed(request: Request) -> None:
        if request.failure == NETWORK_CHANGED:
            changed.append(request.url)

    page.on("requestfailed", on_failed)
    try:
        page.goto(base_url + "/")
        page.fill("#token", key)
        page.click("button[type=submit]")
        try:
            page.wait_for_selector("body[data-ready]", timeout=WAIT_MS)
        except PlaywrightTimeoutError:
            if not changed:
                raise
            # A script the page needs was aborted: the session holds, so load it again.
            page.reload()
            page.wait_for_selector("body[data-ready]", timeout=WAIT_MS)
    finally:
        page.remove_listener("requestfailed", on_failed)
    # Its first fetches done: a test that goes to another view next would abort them.
    page.wait_for_load_state("networkidle", timeout=WAIT_MS)


@dataclass
class Recorder:
    """Everything a page requested, every failed answer, every error it reported."""

    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    @classmethod
    def attach(cls, page: Page) -> Recorder:
        rec = cls()
        page.on("request", lambda r: rec.requests.append(r.url))
        page.on("websocket", lambda ws: rec._websocket(ws))
        page.on("response", rec._response)
        page.on("requestfailed", lambda r: rec._request_failed(r))
        page.on("console", rec._console)
        page.on("pageerror", lambda exc: rec.page_errors.append(str(exc)))
        return rec

    def _websocket(self, ws: WebSocket) -> None:
        self.requests.append(ws.url)

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.failed.append(f"{response.status} {response.url}")

    def _request_failed(self, request: Request) -> None:
        self.failed.append(f"{request.failure} {request.url}")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "") if message.location else ""
            self.console_errors.append(f"{message.text} @ {where}")

    def unexpected_failures(self) -> list[str]:
        """Failed requests, and the browser's own console errors, not from PENDING_ENDPOINTS."""
        return [line for line in [*self.failed, *self.console_errors]
                if NETWORK_CHANGED not in line
                and not any(path in line for path in PENDING_ENDPOINTS)]
