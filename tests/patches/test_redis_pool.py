"""BoundedPool (patches/redis_pool.py) bounds the connections in use and makes callers
wait for one; the first tests fail when redis-py changes what it relies on."""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import time

import pytest
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError

from loanflow.patches.redis_pool import BoundedPool, BoundedSentinelPool
from tests.throwaway import free_port
from tests.throwaway.redis import RedisServer, redis_server_fixture

#: The versions whose internals the patch was read against; add one only after reading it.
CHECKED = {"redis": ("8.1.0",)}

redis_server = redis_server_fixture()


def test_the_installed_redis_py_is_a_version_the_patch_was_checked_against() -> None:
    assert importlib.metadata.version("redis") in CHECKED["redis"]


def test_redis_py_still_takes_and_gives_back_connections_as_the_patch_overrides() -> None:
    taking = inspect.signature(ConnectionPool.get_connection).parameters.values()
    giving = inspect.signature(ConnectionPool.release).parameters

    # Called with no arguments: every parameter past self has a default or is variadic.
    assert all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in list(taking)[1:])
    assert list(giving) == ["self", "connection"]


def test_from_url_still_hands_its_options_to_the_pool_class() -> None:
    pool = BoundedPool.from_url("redis://127.0.0.1:1/0", max_connections=2, timeout=0.5)

    assert isinstance(pool, BoundedPool) and pool.max_connections == 2


def test_the_sentinel_pool_still_leaves_taking_and_giving_back_to_connection_pool() -> None:
    # BoundedSentinelPool's get_connection and release are BoundedPool's over ConnectionPool's.
    assert "get_connection" not in vars(SentinelConnectionPool)
    assert "release" not in vars(SentinelConnectionPool)
    pool = BoundedSentinelPool(service_name="svc", sentinel_manager=None, max_connections=2,
                               timeout=0.5)

    assert (pool.service_name, pool.max_connections, pool.is_master) == ("svc", 2, True)
    assert [c.__name__ for c in BoundedSentinelPool.__mro__[1:4]] == [
        "BoundedPool", "SentinelConnectionPool", "ConnectionPool"]


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


def test_failed_connects_give_their_slot_back_once() -> None:
    # redis-py releases a connection that failed to connect inside get_connection; the
    # slot must come back once, not twice, or each failure would raise the bound by one.
    async def scenario() -> None:
        dead = BoundedPool.from_url(f"redis://127.0.0.1:{free_port()}/0", max_connections=1,
                                    timeout=0.2, socket_connect_timeout=0.5)
        for _ in range(3):
            with pytest.raises(RedisConnectionError):
                await dead.get_connection()
        # The bound still holds: one slot, free again, and taking it leaves none.
        assert not dead._slots.locked()
        await dead._slots.acquire()
        assert dead._slots.locked()
        dead._slots.release()
        await dead.aclose()

    asyncio.run(scenario())
