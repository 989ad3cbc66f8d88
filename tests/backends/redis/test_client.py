"""The process's one Redis client: a bounded pool, a client per event loop, no password shown."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from loanflow.backends.redis.client import BoundedPool, RedisClient
from tests.throwaway.redis import RedisServer, redis_server_fixture

redis_server = redis_server_fixture()


def test_the_repr_shows_where_but_not_the_password() -> None:
    client = RedisClient("redis://user:hunter2@127.0.0.1:6379/3?password=hunter2")

    assert repr(client) == "RedisClient('redis://127.0.0.1:6379/3')"


def test_a_full_pool_makes_a_caller_wait_then_gives_up(redis_server: RedisServer) -> None:
    async def scenario() -> float:
        pool = BoundedPool.from_url(redis_server.url, max_connections=1, timeout=0.2)
        held = await pool.get_connection()
        started = time.monotonic()
        try:
            with pytest.raises(RedisConnectionError, match="No connection available"):
                await pool.get_connection()
            return time.monotonic() - started
        finally:
            await pool.release(held)
            await pool.aclose()

    assert 0.2 <= asyncio.run(scenario()) < 2


def test_a_waiting_caller_gets_the_connection_another_releases(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> None:
        pool = BoundedPool.from_url(redis_server.url, max_connections=1, timeout=5)
        held = await pool.get_connection()
        waiter = asyncio.create_task(pool.get_connection())
        await asyncio.sleep(0.05)
        assert not waiter.done()
        await pool.release(held)
        assert await asyncio.wait_for(waiter, 1) is held
        await pool.release(held)
        await pool.aclose()

    asyncio.run(scenario())


def test_concurrent_commands_never_open_more_than_the_bound(redis_server: RedisServer) -> None:
    # Relies on redis-py taking and returning each command's connection through the pool's
    # get_connection and release: if that changes, the bound (and this test) break.
    async def scenario() -> int:
        pool = BoundedPool.from_url(redis_server.url, max_connections=3, client_name="bounded")
        redis = Redis.from_pool(pool)
        try:
            await asyncio.gather(*(redis.blpop(["nothing-here"], timeout=0.05)
                                   for _ in range(12)))
            clients = await redis.client_list()
            return sum(1 for c in clients if c["name"] == "bounded")
        finally:
            await redis.aclose()

    assert asyncio.run(scenario()) == 3


def test_one_client_serves_successive_event_loops(redis_server: RedisServer) -> None:
    client = RedisClient(redis_server.url)
    asyncio.run(client.open())

    async def ping() -> bool:
        return bool(await client.redis().ping())

    assert asyncio.run(ping()) and asyncio.run(ping())
    asyncio.run(client.close())
    with pytest.raises(RuntimeError, match="expected an open RedisClient"):
        asyncio.run(ping())
