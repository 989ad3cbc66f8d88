"""The process's one Redis client: a client per event loop, no password shown (its bounded
pool: tests/patches/test_redis_pool.py)."""

from __future__ import annotations

import asyncio

import pytest

from loanflow.backends.redis.client import RedisClient
from tests.throwaway.redis import RedisServer, redis_server_fixture

redis_server = redis_server_fixture()


def test_the_repr_shows_where_but_not_the_password() -> None:
    client = RedisClient("redis://user:hunter2@127.0.0.1:6379/3?password=hunter2")

    assert repr(client) == "RedisClient('redis://127.0.0.1:6379/3')"


def test_one_client_serves_successive_event_loops(redis_server: RedisServer) -> None:
    client = RedisClient(redis_server.url)
    asyncio.run(client.open())

    async def ping() -> bool:
        return bool(await client.redis().ping())

    assert asyncio.run(ping()) and asyncio.run(ping())
    asyncio.run(client.close())
    with pytest.raises(RuntimeError, match="expected an open RedisClient"):
        asyncio.run(ping())
