"""`/readyz` is ready while the broker answers (intake needs nothing else), says when the
store does not, and answers within a load balancer's check timeout either way."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loanflow.api.health import CHECK_WAIT_S
from tests.api.test_submit import submit
from tests.conftest import Deployment, ServerProcess, create_key, sample_application
from tests.throwaway.postgres import PostgresServer
from tests.throwaway.redis import RedisServer

pytestmark = pytest.mark.slow

#: Within a balancer's check timeout (1 s by default), with slack for a loaded machine.
ANSWER_BOUND_S = 1.5


class Backends:
    def __init__(self, data_dir: Path) -> None:
        (data_dir / "redis").mkdir()
        self.redis = RedisServer(data_dir / "redis").start()
        self.postgres = PostgresServer().start()
        self.deployment = Deployment(data_dir, broker_url=self.redis.url,
                                     store_url=self.postgres.url)


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    # Shared by the module's tests, each of which puts back what it broke.
    made = Backends(tmp_path_factory.mktemp("readiness"))
    try:
        yield made
    finally:
        made.postgres.thaw()
        made.postgres.remove()
        made.redis.stop()


@pytest.fixture(scope="module")
def server(backends: Backends) -> Iterator[ServerProcess]:
    # A store call gives up after 2 s: longer than the readiness check waits for it.
    started = ServerProcess(backends.deployment, store_timeout_s="2").start()
    yield started
    started.stop()


def readiness(server: ServerProcess) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    answer = httpx.get(server.url + "/readyz", timeout=10)
    return answer, time.monotonic() - began


def test_a_frozen_store_leaves_the_api_ready_and_says_processing_is_degraded(
    backends: Backends, server: ServerProcess
):
    healthy, _ = readiness(server)
    assert healthy.status_code == 200
    assert healthy.json()["processing"] == "healthy"

    key = create_key(backends.deployment, "submit")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert submit(client, key, sample_application()).status_code == 202  # key now known
        backends.postgres.freeze()  # TCP accepted, nothing answered: the slowest failure
        try:
            frozen, took_s = readiness(server)
            accepted = submit(client, key, sample_application())
        finally:
            backends.postgres.thaw()

    assert frozen.status_code == 200, frozen.text
    body = frozen.json()
    assert body["status"] == "ready" and body["processing"] == "degraded"
    assert body["checks"] == {"broker": "ok",
                              "store": f"unavailable: no answer within {CHECK_WAIT_S:g} s"}
    assert took_s < ANSWER_BOUND_S, took_s
    assert accepted.status_code == 202, accepted.text  # what "ready" promised


def test_a_stopped_store_is_named_and_processing_recovers_with_it(
    backends: Backends, server: ServerProcess
):
    backends.postgres.stop()
    try:
        stopped, _ = readiness(server)
    finally:
        backends.postgres.start()
    deadline = time.monotonic() + 20
    while (recovered := readiness(server)[0]).json()["processing"] != "healthy":
        assert time.monotonic() < deadline, recovered.text
        time.sleep(0.2)

    assert stopped.status_code == 200
    assert stopped.json()["processing"] == "degraded"
    assert stopped.json()["checks"]["store"].startswith("unavailable: ")
    assert recovered.json()["checks"] == {"broker": "ok", "store": "ok"}


def test_a_lost_broker_makes_the_api_not_ready_at_once(backends: Backends, server: ServerProcess):
    backends.redis.stop()
    try:
        lost, took_s = readiness(server)
    finally:
        backends.redis.start()

    assert lost.status_code == 503
    body = lost.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["broker"].startswith("unavailable: ")
    assert body["checks"]["store"] == "ok"
    assert took_s < ANSWER_BOUND_S, took_s
