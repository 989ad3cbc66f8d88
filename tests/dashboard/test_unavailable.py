"""When a data source is missing (a 404, a socket that closes), the page says so and keeps
working: never a blank page, never a script error. The backend is replaced at the
browser's network edge, since a real one would have to be broken to test this."""

from __future__ import annotations

import json
import re

from playwright.sync_api import Page, Route, WebSocketRoute

from tests.dashboard.browser import Recorder, log_in

NOT_FOUND = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "Not Found"}


def answer_404(route: Route) -> None:
    route.fulfill(status=404, content_type="application/problem+json", body=json.dumps(NOT_FOUND))


def refuse(ws: WebSocketRoute) -> None:
    ws.close(code=1011, reason="gone")


def test_missing_endpoints_and_a_closed_feed_show_what_is_unavailable(
    embedded_server, operator_key, page: Page, recorder: Recorder
):
    page.route(re.compile(r"/v1/(metrics/series|dead-letters)"), answer_404)
    page.route_web_socket(re.compile(r"/v1/live$"), refuse)

    log_in(page, embedded_server.url, operator_key)

    page.wait_for_selector("#conn[data-state=reconnecting]")
    page.wait_for_selector("#banner:has-text('Live feed unavailable')")
    page.wait_for_selector("#history-status:has-text('History unavailable')")
    page.wait_for_selector("#dl-status:has-text('Dead letters unavailable')")
    assert page.inner_text("[data-tile=received] .value") == "—"
    # The feed keeps retrying (Reconnecting…, then Connecting…): wait for the first.
    page.wait_for_selector("#conn-text:has-text('Reconnecting')")
    assert recorder.page_errors == []
