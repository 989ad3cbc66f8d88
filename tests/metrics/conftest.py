"""Metrics backends for the tests: real SQLite files in tmp_path and a throwaway redis-server.

`backend` is parametrised over both, as the broker and store contract suites
are; each test runs its scenario in `asyncio.run`, opening the backends
inside it (Redis connections belong to the loop that made them).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

from loanflow.backends.redis.events import RedisEventLog
from loanflow.backends.redis.series import RedisSeries
from loanflow.backends.sqlite.events import SQLiteEventLog
from loanflow.backends.sqlite.series import SQLiteSeries
from loanflow.metrics.events import EventLog
from loanflow.metrics.series_base import MetricsSeries
from tests.throwaway.redis import RedisServer, redis_server_fixture

metrics_redis = redis_server_fixture(scope="session")


@dataclass(frozen=True)
class Backend:
    """Makes new, unopened instances over the same storage (a new one = a restarted process)."""

    name: str
    series: Callable[[], MetricsSeries]
    events: Callable[[], EventLog]


def sqlite_backend(directory: Path) -> Backend:
    return Backend(
        "sqlite",
        series=lambda: SQLiteSeries(directory / "metrics.db"),
        events=lambda: SQLiteEventLog(directory / "events.db"),
    )


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return sqlite_backend(tmp_path)
    server: RedisServer = request.getfixturevalue("metrics_redis")
    server.flushall()
    return Backend(
        "redis",
        series=lambda: RedisSeries.from_url(server.url),
        events=lambda: RedisEventLog.from_url(server.url),
    )


class _Openable(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...


T = TypeVar("T", bound=_Openable)


@contextlib.asynccontextmanager
async def opened(resource: T) -> AsyncIterator[T]:
    await resource.open()
    try:
        yield resource
    finally:
        await resource.close()
