"""One process's metrics parts, on the series and event log `loanflow.backends` chose.

Redis (the broker's) when the broker is Redis, so every host shares the
numbers; else SQLite files beside the embedded broker, shared by the
processes of that one host.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from loanflow.metrics.aggregate import Aggregator
from loanflow.metrics.engagement import AuditCounts, EngagementReader, viewers_gauge
from loanflow.metrics.events import EventLog, EventPublisher
from loanflow.metrics.flusher import Flusher, process_id
from loanflow.metrics.hub import LiveHub
from loanflow.metrics.recorder import Recorder
from loanflow.metrics.rollup import RollUp
from loanflow.metrics.series_base import MetricsSeries, QueueState


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
    roll_up: RollUp

    def background(
        self, stop: asyncio.Event, *, live: bool
    ) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        """(name, coroutine) of the tasks to spawn; `live` adds the hub (API processes)."""
        tasks = [
            ("metrics-flusher", self.flusher.run(stop)),
            ("event-publisher", self.publisher.run(stop)),
            ("metrics-roll-up", self.roll_up.run(stop)),
        ]
        if live:
            tasks.append(("live-hub", self.hub.run(stop)))
        return tasks


@contextlib.asynccontextmanager
async def open_metrics(
    series: MetricsSeries,
    events: EventLog,
    *,
    queue_probe: Callable[[], QueueState | None] | None = None,
    audit: AuditCounts | None = None,
) -> AsyncIterator[Metrics]:
    """Open `series` and `events`; close them after the caller's tasks have ended.

    `audit` (the store) gives the summaries their engagement figures."""
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
                roll_up=RollUp(series),
            )
        finally:
            await events.close()
    finally:
        await series.close()
