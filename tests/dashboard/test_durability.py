"""The header says what a 202 rests on (from /readyz), and a banner says so while
accepted applications may be lost (LOANFLOW_UNSAFE_REDIS=1). The unsafe answer is played
at the browser's network edge: the real one is tested in tests/test_startup.py."""

from __future__ import annotations

import json
import re

from playwright.sync_api import Page, Route

from tests.dashboard.browser import Recorder, log_in

UNSAFE = ("UNSAFE (LOANFLOW_UNSAFE_REDIS=1): redis appendonly no, appendfsync everysec,"
          " maxmemory-policy noeviction: an accepted application may be lost")


def test_the_header_names_the_durability_in_force(
    embedded_server, operator_key, page: Page, recorder: Recorder
):
    log_in(page, embedded_server.url, operator_key)

    page.wait_for_selector("#durability:has-text('sqlite synchronous=FULL')")
    assert page.get_attribute("#durability", "data-tone") == "ok"
    assert page.is_hidden("#durability-banner")
    assert recorder.page_errors == []


def test_an_unsafe_redis_is_named_in_red_and_in_a_banner(
    embedded_server, operator_key, page: Page, recorder: Recorder
):
    def unsafe(route: Route) -> None:
        body = {"status": "ready", "checks": {"broker": "ok", "store": "ok"},
                "durability": UNSAFE}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page.route(re.compile(r"/readyz$"), unsafe)

    log_in(page, embedded_server.url, operator_key)

    page.wait_for_selector("#durability[data-tone=bad]:has-text('UNSAFE')")
    page.wait_for_selector("#durability-banner:has-text('Accepted applications may be lost')")
    assert recorder.page_errors == []
