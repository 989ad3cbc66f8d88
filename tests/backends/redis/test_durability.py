"""A Redis that may lose what it acknowledges is refused, at start and on every reconnect.

Each test starts its own throwaway redis-server configured as the test says: without
AOF, with an evicting policy, with `appendfsync everysec`, without CONFIG.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loanflow.backends.redis.broker import RedisStreamsBroker
from loanflow.broker.base import AppendOutcome, Submission
from loanflow.errors import BrokerUnavailable, UnsafeRedis
from loanflow.models import Envelope, new_application_id
from tests.throwaway.redis import RedisServer

NO_AOF = ("--appendonly", "no")


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator[Any]:
    """`start_redis(*extra_args)`: a throwaway redis-server, stopped after the test."""
    servers: list[RedisServer] = []

    def start(*extra_args: str) -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(servers)}", extra_args=extra_args)
        server.directory.mkdir()
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


def submission(key: str) -> Submission:
    now_ns = time.time_ns()
    envelope = Envelope(
        id=new_application_id(now_ns), received_at_ns=now_ns, api_key_id="key-a",
        idempotency_key=key, channel="web", sealed_application=b"sealed",
    )
    return Submission(envelope, "fp")


def broker_for(server: RedisServer, **options: Any) -> RedisStreamsBroker:
    return RedisStreamsBroker.from_url(server.url, visibility_timeout_s=30.0, **options)


def open_and_describe(server: RedisServer, **options: Any) -> str:
    async def main() -> str:
        broker = broker_for(server, **options)
        await broker.open()
        try:
            return broker.durability
        finally:
            await broker.close()

    return asyncio.run(main())


def test_a_redis_without_aof_is_refused_with_the_setting_and_its_fix(start_redis: Any) -> None:
    server = start_redis(*NO_AOF)

    with pytest.raises(UnsafeRedis) as refused:
        open_and_describe(server)

    line = str(refused.value)
    assert "appendonly is no: set `appendonly yes`" in line
    assert "LOANFLOW_UNSAFE_REDIS=1" in line
    assert "\n" not in line
    assert refused.value.exit_status == 2


def test_a_redis_that_may_evict_is_refused(start_redis: Any) -> None:
    server = start_redis("--maxmemory-policy", "allkeys-lru")

    with pytest.raises(UnsafeRedis, match="maxmemory-policy is allkeys-lru: set"
                                          " `maxmemory-policy noeviction`"):
        open_and_describe(server)


def test_the_unsafe_flag_lets_it_start_and_says_unsafe(
    start_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_redis(*NO_AOF)

    with caplog.at_level(logging.WARNING, logger="loanflow.backends.redis.durability"):
        durability = open_and_describe(server, allow_unsafe=True)

    assert durability.startswith("UNSAFE")
    assert "appendonly no" in durability
    assert "appendonly is no" in caplog.text


def test_aof_always_is_in_force_on_a_durable_redis(start_redis: Any) -> None:
    assert open_and_describe(start_redis()) == "redis aof always"


def test_everysec_is_allowed_with_one_warning(
    start_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_redis("--appendfsync", "everysec")

    async def main() -> str:
        broker = broker_for(server)
        await broker.open()
        try:
            # Many connections at once: the pool makes several, each checked.
            await asyncio.gather(*(broker.depth() for _ in range(20)))
            return broker.durability
        finally:
            await broker.close()

    with caplog.at_level(logging.WARNING, logger="loanflow.backends.redis.durability"):
        durability = asyncio.run(main())

    assert durability == "redis aof everysec (may lose the last second)"
    assert caplog.text.count("everysec") == 1


def test_a_redis_without_config_get_is_relied_on_and_said_so_once(
    start_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_redis("--rename-command", "CONFIG", "")

    with caplog.at_level(logging.WARNING, logger="loanflow.backends.redis.durability"):
        durability = open_and_describe(server)

    assert "CONFIG GET disabled" in durability
    assert caplog.text.count("refuses CONFIG GET") == 1


def test_a_redis_restarted_without_aof_accepts_nothing_until_fixed(
    start_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_redis()

    async def main() -> None:
        broker = broker_for(server)
        await broker.open()
        try:
            [first] = await broker.append([submission("before")])
            assert first.outcome is AppendOutcome.ACCEPTED

            # Given the same Redis restarted with AOF off
            server.stop()
            server.extra_args = NO_AOF
            server.start()

            # Then no append is accepted (503, never a 202), and readiness says why
            with pytest.raises(BrokerUnavailable, match="appendonly is no"):
                await broker.append([submission("during")])
            with pytest.raises(BrokerUnavailable, match="appendonly is no"):
                await broker.ping()
            assert broker.durability.startswith("refused")
            assert caplog.text.count("may lose accepted applications") == 1

            # And once AOF is back on, the next connection finds it and appends again
            with server.client() as admin:
                admin.config_set("appendonly", "yes")
                admin.config_set("appendfsync", "always")
            [after] = await broker.append([submission("after")])
            assert after.outcome is AppendOutcome.ACCEPTED
            assert broker.durability == "redis aof always"
        finally:
            await broker.close()

    with caplog.at_level(logging.WARNING, logger="loanflow.backends.redis.durability"):
        asyncio.run(main())
