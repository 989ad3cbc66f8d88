"""Choosing a process's backends from the settings' URLs, read in one place."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from loanflow.backends import make_backends
from loanflow.backends.redis.broker import RedisStreamsBroker
from loanflow.backends.redis.client import RedisClient
from loanflow.backends.redis.events import RedisEventLog
from loanflow.backends.redis.ratelimit import RedisTokenBucketLimiter
from loanflow.backends.redis.series import RedisSeries
from loanflow.backends.redis.velocity import RedisVelocityCounter
from loanflow.broker.ratelimit import TokenBucketLimiter
from loanflow.broker.sqlite import SQLiteBroker
from loanflow.metrics.events_sqlite import SQLiteEventLog
from loanflow.metrics.series_sqlite import SQLiteSeries
from loanflow.pii import new_key_text
from loanflow.pipeline.velocity_sqlite import SQLiteVelocityCounter
from loanflow.process.runtime import open_runtime
from loanflow.settings import Settings
from loanflow.store.postgres import PostgresStore
from loanflow.store.sqlite import SQLiteStore
from tests.throwaway.redis import RedisServer, redis_server_fixture

redis_server = redis_server_fixture()


def test_embedded_settings_choose_sqlite_files_in_the_data_dir(tmp_path: Path) -> None:
    backends = make_backends(Settings(data_dir=tmp_path, api_workers=2))

    assert isinstance(backends.broker, SQLiteBroker) and isinstance(backends.store, SQLiteStore)
    assert isinstance(backends.series, SQLiteSeries) and "metrics.db" in repr(backends.series)
    assert isinstance(backends.events, SQLiteEventLog)
    assert isinstance(backends.velocity, SQLiteVelocityCounter)
    assert repr(backends.velocity) == f"SQLiteVelocityCounter({str(tmp_path / 'store.db')!r})"
    assert isinstance(backends.limiter, TokenBucketLimiter)
    assert backends.redis is None


def test_a_redis_broker_url_builds_every_redis_service_on_one_client() -> None:
    settings = Settings(broker_url="redis://:hunter2@127.0.0.1:6379/0",
                        store_url="postgresql://db/loanflow")

    backends = make_backends(settings)

    assert isinstance(backends.redis, RedisClient)
    services = [backends.broker, backends.velocity, backends.series, backends.events,
                backends.limiter]
    kinds = [RedisStreamsBroker, RedisVelocityCounter, RedisSeries, RedisEventLog,
             RedisTokenBucketLimiter]
    for service, kind in zip(services, kinds, strict=True):
        assert isinstance(service, kind)
        assert service._client is backends.redis  # type: ignore[attr-defined]
    assert isinstance(backends.store, PostgresStore)
    assert "hunter2" not in "".join(repr(s) for s in [*services, backends.redis])


def test_an_unknown_broker_scheme_is_refused_without_showing_the_url() -> None:
    with pytest.raises(ValueError, match=r"or a redis:// broker URL, got amqp://") as caught:
        make_backends(Settings(broker_url="amqp://user:s3cret@host/"))
    assert "s3cret" not in str(caught.value)


def test_embedded_broker_with_another_store_is_refused() -> None:
    with pytest.raises(ValueError, match="expected a redis:// broker URL or the embedded store"):
        make_backends(Settings(store_url="postgresql://db/loanflow"))


def test_a_process_on_redis_opens_one_pool_of_connections(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Broker, velocity, series and events open in turn, and so share one connection."""
    redis_server.flushall()
    settings = Settings(broker_url=redis_server.url, data_dir=tmp_path, pii_key=new_key_text())

    async def clients_while_open() -> list[str]:
        async with open_runtime(settings):
            with redis_server.client() as admin:
                return [c["name"] for c in admin.client_list() if c["name"] != ""]

    assert asyncio.run(clients_while_open()) == ["loanflow"]
