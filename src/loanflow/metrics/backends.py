"""Choose the metrics backends from the settings, and hold one process's metrics parts.

Redis (the broker's URL) when the broker is Redis, so every host shares the
numbers; else SQLite files beside the embedded broker, shared by the
processes of that one host.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from loanflow.backends.redis.events import RedisEventLog
from loanflow.backends.redis.series import RedisSeries
from loanflow.metrics.aggregate import Aggregator
from loanflow.metrics.engagement import AuditCounts, EngagementReader, viewers_gauge
from loanflow.metrics.events import EventLog, EventPublisher
from loanflow.metrics.events_sqlite import SQLiteEventLog
from loanflow.metrics.flusher import Flusher, process_id
from loanflow.metrics.hub import LiveHub
from loanflow.metrics.recorder import Recorder
from loanflow.metrics.series_base import MetricsSeries, QueueState
from loanflow.metrics.series_sqlite import SQLiteSeries
from loanflow.settings import Settings

#: Embedded files, in the data directory.
SERIES_FILE = "metrics.db"
EVENTS_FILE = "events.db"
_REDIS_SCHEMES = ("redis", "rediss", "unix")


def make_series(settings: Settings) -> MetricsSeries:
    if _redis_url(settings):
        return RedisSeries.from_url(settings.broker_url, allow_unsafe=settings.unsafe_redis)
    return SQLiteSeries(settings.data_dir / SERIES_FILE)


def make_event_log(settings: Settings) -> EventLog:
    if _redis_url(settings):
        return RedisEventLog.from_url(settings.broker_url, allow_unsafe=settings.unsafe_redis)
    return SQLiteEventLog(settings.data_dir / EVENTS_FILE)


def _redis_url(settings: Settings) -> bool:
    url = settings.broker_url
    if not url:
        return False
    scheme = url.partition("://")[0]
    if scheme not in _REDIS_SCHEMES:
        # Only the scheme: a URL may carry a password.
        raise ValueError(f"expected a redis:// broker URL or none, got {scheme}://…")
    return True


@dataclass
class Metrics:
    """One process's metrics parts; `background()` are the tasks its lifespan must run."""

    recorder: Recorder
    series: MetricsSeries
    events: EventLog
    publisher: EventPublisher
    flusher: Flusher
    aggregator: Aggregator
    hub: LiveHub

    def background(
        self, stop: asyncio.Event, *, live: bool
    ) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        """(name, coroutine) of the tasks to spawn; `live` adds the hub (API processes)."""
        tasks = [
            ("metrics-flusher", self.flusher.run(stop)),
            ("event-publisher", self.publisher.run(stop)),
        ]
        if live:
            tasks.append(("live-hub", self.hub.run(stop)))
        return tasks


@contextlib.asynccontextmanager
async def open_metrics(
    settings: Settings,
    *,
    queue_probe: Callable[[], QueueState | None] | None = None,
    audit: AuditCounts | None = None,
) -> AsyncIterator[Metrics]:
    """Open the backends; close them after the caller's tasks have ended.

    `audit` (the store) gives the summaries their engagement figures."""
    series, events = make_series(settings), make_event_log(settings)
    await series.open()
    try:
        await events.open()
        try:
            recorder, process = Recorder(), process_id()
            engagement = EngagementReader(audit) if audit is not None else None
            aggregator = Aggregator(series, queue_probe=queue_probe, engagement=engagement)
            hub = LiveHub(aggregator, events)
            yield Metrics(
                recorder=recorder,
                series=series,
                events=events,
                publisher=EventPublisher(events),
                flusher=Flusher(recorder, series, process=process, queue_probe=queue_probe,
                                gauge_probe=lambda: viewers_gauge(process, hub.viewers)),
                aggregator=aggregator,
                hub=hub,
            )
        finally:
            await events.close()
    finally:
        await series.close()
