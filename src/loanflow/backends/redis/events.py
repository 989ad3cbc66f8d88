"""The production event log: a Redis stream, XADD MAXLEN ~ EVENTS_KEPT (approximate trim is fine
for a display log; the record of truth is the store)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from loanflow.backends.redis import keys
from loanflow.backends.redis.client import OnClient, RedisClient
from loanflow.backends.redis.errors import unavailable_as
from loanflow.metrics import names
from loanflow.metrics.events import Event, decode_events, encode_event
from loanflow.metrics.series_base import MetricsUnavailable

_FIELD = b"e"


class RedisEventLog(OnClient):
    unavailable = MetricsUnavailable
    label = "redis events"

    def __init__(self, client: RedisClient, *, kept: int = names.EVENTS_KEPT) -> None:
        super().__init__(client)
        self._kept = kept

    async def append(self, events: Sequence[Event]) -> None:
        if not events:
            return
        redis = self._redis()
        with _unavailable("append"):
            async with redis.pipeline(transaction=False) as pipe:
                for event in events:
                    pipe.xadd(keys.EVENTS, {_FIELD: encode_event(event)},
                              maxlen=self._kept, approximate=True)
                await pipe.execute()

    async def read_since(self, cursor: str, *, limit: int = 1000) -> tuple[list[Event], str]:
        redis = self._redis()
        with _unavailable("read_since"):
            rows = _entries(
                await redis.xrange(keys.EVENTS, min=f"({cursor}", max="+", count=limit)
            )
        if not rows:
            return [], cursor
        return decode_events(fields[_FIELD] for _, fields in rows), rows[-1][0].decode()

    async def latest_cursor(self) -> str:
        redis = self._redis()
        with _unavailable("latest_cursor"):
            rows = _entries(await redis.xrevrange(keys.EVENTS, max="+", min="-", count=1))
        return rows[0][0].decode() if rows else "0-0"

    async def recent(self, limit: int) -> tuple[list[Event], str]:
        redis = self._redis()
        with _unavailable("recent"):
            rows = _entries(await redis.xrevrange(keys.EVENTS, max="+", min="-", count=limit))
        if not rows:
            return [], "0-0"
        events = decode_events(fields[_FIELD] for _, fields in reversed(rows))
        return events, rows[0][0].decode()


def _unavailable(action: str) -> contextlib.AbstractContextManager[None]:
    return unavailable_as(MetricsUnavailable, f"redis events {action}")


def _entries(reply: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """XRANGE's reply as typed (redis-py types it loosely; without decode_responses: bytes)."""
    return [(entry_id, fields) for entry_id, fields in reply]
