"""The charts' longer ranges: what a server recorded is there after it restarts."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loanflow.loadgen.synthetic import generate
from tests.conftest import ServerProcess, auth, create_key
from tests.dashboard.browser import Recorder, log_in
from tests.dashboard.load import submit

#: A minute's traffic shows once the minute has ended and settled: at most this long.
MINUTE_WAIT_S = 75


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of this test's own: stopping it must not disturb the other tests."""
    srv = ServerProcess(tmp_path).start()
    yield srv
    srv.stop()


def busy_minutes(server: ServerProcess, key: str) -> list[int]:
    """The minutes of the 24 h range in which applications were received."""
    body = httpx.get(f"{server.url}/v1/metrics/series", params={"range": "24h"},
                     headers=auth(key), timeout=10).json()
    return [t for t, r in zip(body["t"], body["received_per_s"], strict=True) if r]


def test_switch_the_charts_to_24_h_after_a_restart(
    restartable: ServerProcess, page, recorder: Recorder
):
    # Given traffic recorded by the server, in a minute that has ended
    submit_key = create_key(restartable.deployment, "submit")
    read_key = create_key(restartable.deployment, "read")
    for seed in range(5):
        submit(restartable.url, submit_key, generate(random.Random(seed)))
    deadline = time.monotonic() + MINUTE_WAIT_S
    while not busy_minutes(restartable, read_key):
        assert time.monotonic() < deadline, "the traffic's minute never showed in the 24 h range"
        time.sleep(1)
    traffic_minute = busy_minutes(restartable, read_key)[0]

    # When the server restarts and the charts switch to 24 h
    restartable.stop()
    restarted_at = time.time()
    restartable.start()
    log_in(page, restartable.url, create_key(restartable.deployment, "read"))
    page.click("[data-window='86400']")

    # Then the throughput chart draws a point per minute, the traffic's among them
    chart = "[data-chart=throughput][data-range='24h'][data-first-busy-t]"
    page.wait_for_selector(chart)
    assert page.get_attribute(chart, "data-step-s") == "60"
    assert int(page.get_attribute(chart, "data-points") or 0) == 24 * 60
    first_busy = int(page.get_attribute(chart, "data-first-busy-t") or 0)
    assert first_busy == traffic_minute < restarted_at
    assert page.get_attribute("[data-window='86400']", "aria-pressed") == "true"

    # And the choice survives a reload of the page
    page.reload()
    page.wait_for_selector(chart)
    assert page.get_attribute("[data-window='86400']", "aria-pressed") == "true"
    assert recorder.page_errors == []
    assert recorder.unexpected_failures() == []
