"""Fixtures of the fault suite: one throwaway PostgreSQL and one Redis for the whole
package (a fresh database and an empty Redis per test), the bench, and the
collector that prints one line per fault at the end of the run."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Deployment
from tests.faults.harness import Bench
from tests.faults.reconcile import Outcome
from tests.throwaway.postgres import PostgresServer, fresh_database
from tests.throwaway.redis import RedisServer

#: Lease of a batch in the fault tests (the default is 30 s).
VISIBILITY_TIMEOUT_S = "3"

OUTCOMES = pytest.StashKey[list[Outcome]]()
RESULTS_FILE = pytest.StashKey[Path]()


@pytest.fixture(scope="package")
def fault_postgres() -> Iterator[PostgresServer]:
    """A server of the suite's own: the tests stop and freeze it."""
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.remove()


@pytest.fixture(scope="package")
def fault_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """AOF on with `appendfsync always` and `noeviction` (tests/throwaway/redis.py)."""
    server = RedisServer(tmp_path_factory.mktemp("fault-redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def production(
    fault_postgres: PostgresServer, fault_redis: RedisServer, tmp_path: Path
) -> Iterator[Deployment]:
    """Both servers up and answering (whatever the previous test did to them), Redis
    empty with no memory limit, and a fresh database."""
    for server in (fault_postgres, fault_redis):
        if server.proc is None or server.proc.poll() is not None:
            server.start()
        else:
            server.thaw()
    with fault_redis.client() as r:
        r.config_set("maxmemory", 0)
        r.flushall()
    with fresh_database(fault_postgres.url) as store_url:
        yield Deployment(tmp_path, broker_url=fault_redis.url, store_url=store_url)


@pytest.fixture
def record_outcome(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Callable[[Outcome], None]:
    config = request.config

    def record(outcome: Outcome) -> None:
        config.stash.setdefault(OUTCOMES, []).append(outcome)
        path = config.stash.setdefault(RESULTS_FILE,
                                       tmp_path_factory.getbasetemp() / "faults.txt")
        with open(path, "a") as results:
            results.write(outcome.line() + "\n")

    return record


@pytest.fixture
def bench(
    production: Deployment, tmp_path: Path, record_outcome: Callable[[Outcome], None]
) -> Callable[..., contextlib.AbstractContextManager[Bench]]:
    """`with bench(**settings) as b:` a production deployment of 2 API and 2 worker
    processes under the steady load."""

    def make(*, driver_options: dict[str, Any] | None = None, **settings: str) -> Bench:
        # A short lease: a batch whose worker died, or whose ack failed while Redis was
        # down, is handed out again within the test instead of after the default 30 s.
        settings = {"visibility_timeout_s": VISIBILITY_TIMEOUT_S, **settings}
        return Bench(production, tmp_path / "logs", record_outcome,
                     driver_options=driver_options, settings=settings)

    return make


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    outcomes = config.stash.get(OUTCOMES, [])
    if not outcomes:
        return
    terminalreporter.section("fault reconciliation")
    for outcome in outcomes:
        terminalreporter.write_line(outcome.line())
    terminalreporter.write_line(f"(also in {config.stash[RESULTS_FILE]})")
