"""Choosing a process's backends from the settings' URLs, read in one place."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from loanflow.backends import make_backends
from loanflow.backends.postgres import hosts as postgres_hosts
from loanflow.backends.postgres.store import PostgresStore
from loanflow.backends.redis import sentinel
from loanflow.backends.redis.broker import RedisStreamsBroker
from loanflow.backends.redis.client import RedisClient
from loanflow.backends.redis.events import RedisEventLog
from loanflow.backends.redis.ratelimit import RedisTokenBucketLimiter
from loanflow.backends.redis.series import RedisSeries
from loanflow.backends.redis.velocity import RedisVelocityCounter
from loanflow.backends.sqlite.broker import SQLiteBroker
from loanflow.backends.sqlite.events import SQLiteEventLog
from loanflow.backends.sqlite.series import SQLiteSeries
from loanflow.backends.sqlite.store import SQLiteStore
from loanflow.backends.sqlite.velocity import SQLiteVelocityCounter
from loanflow.broker.ratelimit import TokenBucketLimiter
from loanflow.pii import new_key_text
from loanflow.process.runtime import open_runtime
from loanflow.settings import Settings
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


def test_a_sentinel_url_builds_every_redis_service_on_one_client() -> None:
    settings = Settings(
        broker_url="redis+sentinel://:hunter2@10.0.0.1:26379,10.0.0.2:26379,[::1]:26380/lf/2",
        store_url="postgresql://db/loanflow", redis_min_replicas=1)

    backends = make_backends(settings)

    assert isinstance(backends.redis, RedisClient)
    assert isinstance(backends.broker, RedisStreamsBroker)
    assert backends.broker._client is backends.redis  # type: ignore[attr-defined]
    assert backends.limiter._client is backends.redis  # type: ignore[attr-defined]
    assert repr(backends.redis) == (
        "RedisClient('redis+sentinel://10.0.0.1:26379,10.0.0.2:26379,[::1]:26380/lf/2')")


def test_a_sentinel_url_names_its_sentinels_service_and_database() -> None:
    target = sentinel.parse("redis+sentinel://u:p%40ss@h1:1,h2:2/my-primary/3")

    assert target.sentinels == (("h1", 1), ("h2", 2))
    assert (target.service_name, target.db) == ("my-primary", 3)
    assert (target.username, target.password) == ("u", "p@ss")
    assert sentinel.parse("redis+sentinel://h1:1/svc").db == 0
    assert "p@ss" not in repr(target)


@pytest.mark.parametrize(("url", "why"), [
    ("redis+sentinel://h1:1,h2:2", "the service name is missing"),
    ("redis+sentinel://h1:1/", "the service name is missing"),
    ("redis+sentinel://h1/svc", "each Sentinel as HOST:PORT, got 'h1'"),
    ("redis+sentinel://h1:1,,h2:2/svc", "each Sentinel as HOST:PORT, got ''"),
    ("redis+sentinel://h1:port/svc", "a port from 1 to 65535, got 'port'"),
    ("redis+sentinel://h1:70000/svc", "a port from 1 to 65535, got '70000'"),
    ("redis+sentinel://h1:1/svc/zero", "the database is a number, got 'zero'"),
])
def test_a_malformed_sentinel_url_is_refused_at_start_saying_why(url: str, why: str) -> None:
    with pytest.raises(ValueError) as caught:
        make_backends(Settings(broker_url=url.replace("//", "//:s3cret@", 1),
                               store_url="postgresql://db/loanflow"))

    message = str(caught.value)
    assert message.startswith("LOANFLOW_BROKER_URL: malformed redis+sentinel:// URL: expected"
                              " redis+sentinel://HOST:PORT[,HOST:PORT…]/SERVICE_NAME[/DB]")
    assert why in message and "s3cret" not in message


def test_a_store_url_may_name_a_primary_and_its_standbys() -> None:
    url = "postgresql://app:s3cret@pg1:5432,pg2:5433,[::1]/loanflow?target_session_attrs=primary"
    store = make_backends(Settings(broker_url="redis://r:6379/0", store_url=url)).store

    assert isinstance(store, PostgresStore)
    assert "s3cret" not in repr(store)
    target = postgres_hosts.parse(url)
    assert target.hosts == (("pg1", 5432), ("pg2", 5433), ("::1", 5432))
    assert target.target_session_attrs == "primary"
    # Several hosts and no attribute: the primary all the same (read-write).
    assert postgres_hosts.parse("postgresql://pg1,pg2/db").target_session_attrs == "read-write"


@pytest.mark.parametrize(("url", "why"), [
    ("postgresql://pg1:5432,pg2:port/db", "a port from 1 to 65535, got 'port'"),
    ("postgresql://pg1:5432,pg2:70000/db", "a port from 1 to 65535, got '70000'"),
    ("postgresql://pg1:5432,,pg2:5432/db", "each host as HOST[:PORT], got ''"),
    ("postgresql://pg1,[::1/db", "Invalid IPv6 URL"),
    ("postgresql://pg1,[::1]x/db", "an IPv6 host as [ADDRESS]:PORT, got '[::1]x'"),
    ("postgresql://pg1,pg2/db?target_session_attrs=standby",
     "expected target_session_attrs=read-write or primary with several hosts"),
    ("postgresql://pg1,pg2/db?target_session_attrs=any",
     "expected target_session_attrs=read-write or primary with several hosts"),
    ("postgresql://pg1/db?target_session_attrs=read-only",
     "expected target_session_attrs=read-write, primary or any"),
    ("postgresql://pg1/db?sslmode", "expected the parameters as ?NAME=VALUE"),
])
def test_a_malformed_store_url_is_refused_at_start_saying_why(url: str, why: str) -> None:
    with pytest.raises(ValueError) as caught:
        make_backends(Settings(broker_url="redis://r:6379/0",
                               store_url=url.replace("//", "//app:s3cret@", 1)))

    message = str(caught.value)
    assert message.startswith("LOANFLOW_STORE_URL: malformed postgresql:// URL: expected")
    assert why in message and "s3cret" not in message


def test_min_replicas_need_a_redis_broker() -> None:
    with pytest.raises(ValueError, match="LOANFLOW_REDIS_MIN_REPLICAS: expected a redis://"):
        make_backends(Settings(redis_min_replicas=1))


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
