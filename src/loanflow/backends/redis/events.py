"""The production event log: a Redis stream, XADD MAXLEN ~ EVENTS_KEPT (approximate trim is fine
for a display log; the record of truth is the store)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from loanflow.backends.redis import keys
from loanflow.backends.redis.errors import unavailable_as
from loanflow.backends.redis.packing import pack_with_hiredis
from loanflow.metrics import names
from loanflow.metrics.events import Event, decode_events, encode_event
from loanflow.metrics.series_base import MetricsUnavailable

_FIELD = b"e"


class RedisEventLog:
    def __init__(
        self, url: str, *, kept: int = names.EVENTS_KEPT, socket_timeout_s: float = 5.0,
        connect_timeout_s: float = 2.0,
    ) -> None:
        self._url, self._kept = url, kept
        self._socket_timeout_s, self._connect_timeout_s = socket_timeout_s, connect_timeout_s
        self._redis: Redis | None = None

    def __repr__(self) -> str:
        return "RedisEventLog(...)"  # the URL may carry a password

    async def open(self) -> None:
        self._redis = Redis.from_url(
            self._url,
            socket_timeout=self._socket_timeout_s,
            socket_connect_timeout=self._connect_timeout_s,
            client_name="loanflow-events",
        )
        pack_with_hiredis(self._redis.connection_pool)
        with _unavailable("open"):
            await self._redis.ping()

    async def close(self) -> None:
        redis, self._redis = self._redis, None
        if redis is not None:
            with contextlib.suppress(RedisError, OSError):
                await redis.aclose()

    async def append(self, events: Sequence[Event]) -> None:
        if not events:
            return
        redis = self._client()
        with _unavailable("append"):
            async with redis.pipeline(transaction=False) as pipe:
                for event in events:
                    pipe.xadd(keys.EVENTS, {_FIELD: encode_event(event)},
                              maxlen=self._kept, approximate=True)
                await pipe.execute()

    async def read_since(self, cursor: str, *, limit: int = 1000) -> tuple[list[Event], str]:
        redis = self._client()
        with _unavailable("read_since"):
            rows = _entries(
                await redis.xrange(keys.EVENTS, min=f"({cursor}", max="+", count=limit)
            )
        if not rows:
            return [], cursor
        return decode_events(fields[_FIELD] for _, fields in rows), rows[-1][0].decode()

    async def latest_cursor(self) -> str:
        redis = self._client()
        with _unavailable("latest_cursor"):
            rows = _entries(await redis.xrevrange(keys.EVENTS, max="+", min="-", count=1))
        return rows[0][0].decode() if rows else "0-0"

    async def recent(self, limit: int) -> tuple[list[Event], str]:
        redis = self._client()
        with _unavailable("recent"):
            rows = _entries(await redis.xrevrange(keys.EVENTS, max="+", min="-", count=limit))
        if not rows:
            return [], "0-0"
        events = decode_events(fields[_FIELD] for _, fields in reversed(rows))
        return events, rows[0][0].decode()

    def _client(self) -> Redis:
        if self._redis is None:
            raise RuntimeError("expected an open RedisEventLog, got a closed one")
        return self._redis


def _unavailable(action: str) -> contextlib.AbstractContextManager[None]:
    return unavailable_as(MetricsUnavailable, f"redis events {action}")


def _entries(reply: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """XRANGE's reply as typed (redis-py types it loosely; without decode_responses: bytes)."""
    return [(entry_id, fields) for entry_id, fields in reply]
