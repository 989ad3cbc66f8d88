"""A banner names what the shipped alerting rules would page on (GET /v1/alerts); a
healthy system shows none. The firing answer is played at the browser's network edge:
the real conditions are tested in tests/metrics/test_alerting.py and
tests/api/test_dead_letters.py."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, Route

from tests.conftest import ServerProcess, create_key
from tests.dashboard.browser import Recorder, log_in

FIRING = {"alerts": [
    {"name": "LoanflowBackendDown", "severity": "critical",
     "summary": "The store is unreachable from loanflow"},
    {"name": "LoanflowDeadLettersGrowing", "severity": "warning",
     "summary": "Dead letters grew by 3 in 15 minutes"},
]}


@pytest.fixture(scope="module")
def healthy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own: the shared one holds other tests' dead letters."""
    server = ServerProcess(tmp_path_factory.mktemp("healthy")).start()
    yield server
    server.stop()


def test_a_healthy_system_shows_no_alert_banner(
    healthy_server: ServerProcess, page: Page, recorder: Recorder
):
    key = create_key(healthy_server.deployment, "read,operate")
    with page.expect_response(re.compile(r"/v1/alerts$")) as answered:
        log_in(page, healthy_server.url, key)
    assert answered.value.status == 200
    assert answered.value.json() == {"alerts": []}
    assert page.is_hidden("#alerts-banner")
    assert recorder.page_errors == []


def test_firing_alerts_are_named_in_a_red_banner_while_one_is_critical(
    embedded_server, operator_key, page: Page, recorder: Recorder
):
    def firing(route: Route) -> None:
        route.fulfill(status=200, content_type="application/json", body=json.dumps(FIRING))

    page.route(re.compile(r"/v1/alerts$"), firing)

    log_in(page, embedded_server.url, operator_key)

    banner = page.wait_for_selector("#alerts-banner[data-tone=bad]")
    assert banner is not None
    assert banner.text_content() == ("Alert: The store is unreachable from loanflow"
                                     " · Dead letters grew by 3 in 15 minutes")
    assert recorder.page_errors == []
