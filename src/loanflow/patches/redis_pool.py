"""A redis-py asyncio ConnectionPool whose callers wait for a free connection.

Relies on redis-py 8.1.0: `redis.asyncio.Redis` takes each command's connection
through `pool.get_connection()` (called with no arguments) and gives it back
through `pool.release(connection)`; `ConnectionPool.from_url` passes its keyword
options to the class; `max_connections` is set by `ConnectionPool.__init__`;
`redis.asyncio.sentinel.SentinelConnectionPool` takes `service_name` and
`sentinel_manager` by keyword, passes its other options on to `ConnectionPool`
and leaves `get_connection` and `release` to it. tests/patches/test_redis_pool.py
checks each.

Why: past `max_connections` redis-py's ConnectionPool fails at once while Redis
is fine, and its BlockingConnectionPool waits through a Condition that costs CPU on every
command (figures in commit 7483d3a); here a semaphore is taken without waiting
while a connection is free.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import ConnectionPool
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError

#: Seconds a caller waits for a free connection unless told otherwise.
WAIT_S = 5.0


class BoundedPool(ConnectionPool):
    """At most `max_connections` in use; past that a caller waits up to `timeout` seconds
    for one, then gets "No connection available." (a redis ConnectionError)."""

    def __init__(self, *, timeout: float | None = WAIT_S, **options: Any) -> None:
        super().__init__(**options)
        self._slots = asyncio.Semaphore(self.max_connections)
        self._wait_s = timeout  # for a free connection
        #: id() of each connection handed out: only those give a slot back on release
        #: (redis-py's get_connection releases a connection that failed to connect itself).
        self._out: set[int] = set()

    async def get_connection(self, *args: Any, **options: Any) -> AbstractConnection:
        if self._slots.locked():
            try:
                async with asyncio.timeout(self._wait_s):
                    await self._slots.acquire()
            except TimeoutError as exc:
                raise RedisConnectionError("No connection available.") from exc
        else:
            await self._slots.acquire()  # returns at once
        try:
            connection: AbstractConnection = await super().get_connection()  # type: ignore[no-untyped-call]
        except BaseException:
            self._slots.release()
            raise
        self._out.add(id(connection))
        return connection

    async def release(self, connection: AbstractConnection) -> None:
        try:
            await super().release(connection)
        finally:
            if id(connection) in self._out:
                self._out.discard(id(connection))
                self._slots.release()


class BoundedSentinelPool(BoundedPool, SentinelConnectionPool):
    """BoundedPool over the primary that Sentinel names (`service_name`, `sentinel_manager`):
    each new connection asks the Sentinels where the primary is."""
