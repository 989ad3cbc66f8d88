"""The live hub: 2 Hz snapshots and events to each reader; a stuck client is dropped."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import msgspec
import pytest
from starlette.websockets import WebSocket

from loanflow.backends.sqlite.events import SQLiteEventLog
from loanflow.backends.sqlite.series import SQLiteSeries
from loanflow.metrics import names
from loanflow.metrics.aggregate import Aggregator
from loanflow.metrics.events import Event, make_event
from loanflow.metrics.hub import LiveHub, Subscription
from loanflow.metrics.live_ws import live_endpoint
from loanflow.metrics.series_base import QueueState
from tests.metrics.conftest import opened

#: The keys of the snapshot message, as the dashboard and GET /v1/metrics/summary use them.
SNAPSHOT_KEYS = {
    "type", "at", "window_s", "rates", "error_rate", "latency_ms", "queue", "counts", "totals",
    "latest_second", "engagement",
}


def _event(n: int) -> Event:
    return make_event(names.EVENT_REJECTION, application_id=f"app-{n}", code="c",
                      message="m", channel="web", applicant_name=f"<b>Name {n}</b>")


async def _drain(sub: Subscription) -> list[dict[str, Any]]:
    """Everything waiting for `sub` now, without blocking."""
    out = []
    while not sub._queue.empty():
        message = sub._queue.get_nowait()
        if message is not None:
            out.append(msgspec.json.decode(message))
    return out


def test_a_client_that_never_reads_is_dropped_and_a_reader_gets_every_message(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with opened(SQLiteSeries(tmp_path / "m.db")) as series, \
                opened(SQLiteEventLog(tmp_path / "e.db")) as log:
            hub = LiveHub(Aggregator(series), log, client_queue=4)
            await hub.tick()  # the hub starts after the existing events
            stuck, reader = hub.subscribe(), hub.subscribe()
            received: list[dict[str, Any]] = []
            for n in range(6):
                await log.append([_event(n)])
                await hub.tick()
                received += await _drain(reader)

            assert stuck.dropped and stuck.closed and hub.viewers == 1
            assert [m async for m in stuck] == []  # its stream ended, nothing stale left
            # The last snapshot on subscribing, then a snapshot and the new event each tick.
            assert [m["type"] for m in received] == ["snapshot"] + ["snapshot", "event"] * 6
            assert set(received[0]) == SNAPSHOT_KEYS
            ids = [m["event"]["id"] for m in received if m["type"] == "event"]
            assert ids == [f"app-{n}" for n in range(6)]

    asyncio.run(scenario())


def test_a_new_subscriber_first_gets_the_last_snapshot_and_recent_events(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        async with opened(SQLiteSeries(tmp_path / "m.db")) as series, \
                opened(SQLiteEventLog(tmp_path / "e.db")) as log:
            await log.append([_event(n) for n in range(3)])
            hub = LiveHub(Aggregator(series), log)
            await hub.tick()
            late = hub.subscribe()
            return [str(m["type"]) for m in await _drain(late)]

    assert asyncio.run(scenario()) == ["snapshot", "event", "event", "event"]


@pytest.mark.slow  # watches for seconds
def test_a_reader_gets_at_least_two_snapshots_a_second_while_a_stuck_client_is_dropped(
    tmp_path: Path,
) -> None:
    # Ticks at 0, 0.5, ... 2.0 s: five snapshots expected, four (2 Hz over 2 s) required.
    run_s, required = 2.25, 4

    async def scenario() -> tuple[int, bool]:
        async with opened(SQLiteSeries(tmp_path / "m.db")) as series, \
                opened(SQLiteEventLog(tmp_path / "e.db")) as log:
            aggregator = Aggregator(series, queue_probe=lambda: QueueState(depth=3))
            hub = LiveHub(aggregator, log, client_queue=3)
            stop = asyncio.Event()
            stuck, reader = hub.subscribe(), hub.subscribe()
            task = asyncio.create_task(hub.run(stop))
            snapshots = 0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(run_s):
                    async for message in reader:
                        snapshots += msgspec.json.decode(message)["type"] == "snapshot"
            stop.set()
            await task
            return snapshots, stuck.dropped

    started = time.monotonic()
    snapshots, dropped = asyncio.run(scenario())

    assert dropped
    assert snapshots >= required, f"{snapshots} snapshots in {time.monotonic() - started:.1f}s"


class _CountingAggregator(Aggregator):
    """The real aggregator, counting the snapshots asked of it."""

    summaries = 0

    async def summary(self, *args: Any, **kwargs: Any) -> Any:
        self.summaries += 1
        return await super().summary(*args, **kwargs)


def test_with_nobody_watching_the_hub_reads_nothing_and_the_first_viewer_wakes_it(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with opened(SQLiteSeries(tmp_path / "m.db")) as series, \
                opened(SQLiteEventLog(tmp_path / "e.db")) as log:
            await log.append([_event(n) for n in range(3)])
            aggregator = _CountingAggregator(series)
            # Ticks 20 times a second while watched: idling is what keeps the count at 0.
            hub = LiveHub(aggregator, log, interval_s=0.05)
            stop = asyncio.Event()
            task = asyncio.create_task(hub.run(stop))
            await asyncio.sleep(0.5)
            assert aggregator.summaries == 0

            viewer = hub.subscribe()
            async with asyncio.timeout(2):
                first = [msgspec.json.decode(await anext(viewer)) for _ in range(4)]
            assert [m["type"] for m in first] == ["snapshot", "event", "event", "event"]
            assert [m["event"]["id"] for m in first[1:]] == ["app-0", "app-1", "app-2"]

            viewer.close()
            await asyncio.sleep(0.2)  # at most one tick was under way when it left
            idle_from = aggregator.summaries
            await asyncio.sleep(0.5)
            assert aggregator.summaries == idle_from
            stop.set()
            await task

    asyncio.run(scenario())


class _AsgiClient:
    """The far side of an ASGI WebSocket: what a browser would send and see."""

    def __init__(self, *, reads: bool = True) -> None:
        self.incoming: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        self.sent: list[MutableMapping[str, Any]] = []
        self.reads = reads
        self.incoming.put_nowait({"type": "websocket.connect"})

    def websocket(self) -> WebSocket:
        scope = {"type": "websocket", "path": "/v1/live", "headers": [], "query_string": b""}
        return WebSocket(scope, self._receive, self._send)

    async def _receive(self) -> dict[str, object]:
        return await self.incoming.get()

    async def _send(self, message: MutableMapping[str, Any]) -> None:
        if not self.reads and message["type"] == "websocket.send":
            await asyncio.Event().wait()  # a full TCP window: the send never completes
        self.sent.append(message)

    def texts(self) -> list[dict[str, Any]]:
        return [msgspec.json.decode(str(m["text"])) for m in self.sent if "text" in m]


def test_live_endpoint_sends_snapshots_and_events_until_the_client_leaves(
    tmp_path: Path,
) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], int]:
        async with opened(SQLiteSeries(tmp_path / "m.db")) as series, \
                opened(SQLiteEventLog(tmp_path / "e.db")) as log:
            await log.append([_event(1)])
            hub = LiveHub(Aggregator(series), log)
            await hub.tick()
            client = _AsgiClient()
            endpoint = asyncio.create_task(live_endpoint(client.websocket(), hub))
            await asyncio.sleep(0)  # let it accept and subscribe
            await hub.tick()
            while len(client.texts()) < 3:
                await asyncio.sleep(0.01)
            client.incoming.put_nowait({"type": "websocket.disconnect", "code": 1001})
            await asyncio.wait_for(endpoint, 5)
            return client.texts(), hub.viewers

    messages, viewers = asyncio.run(scenario())

    assert [m["type"] for m in messages] == ["snapshot", "event", "snapshot"]
    assert set(messages[0]) == SNAPSHOT_KEYS
    event = messages[1]["event"]
    assert messages[1] == {"type": "event", "event": {
        "kind": "rejection", "at": event["at"], "id": "app-1", "code": "c", "message": "m",
        "channel": "web", "applicant_name": "<b>Name 1</b>",
    }}
    assert viewers == 0


def test_live_endpoint_closes_a_stuck_client_with_try_again_later(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[MutableMapping[str, Any]], int]:
        async with opened(SQLiteSeries(tmp_path / "m.db")) as series, \
                opened(SQLiteEventLog(tmp_path / "e.db")) as log:
            hub = LiveHub(Aggregator(series), log)
            await hub.tick()
            client = _AsgiClient(reads=False)
            await asyncio.wait_for(
                live_endpoint(client.websocket(), hub, send_timeout_s=0.05), 5
            )
            return client.sent, hub.viewers

    sent, viewers = asyncio.run(scenario())

    assert sent[0]["type"] == "websocket.accept"
    assert sent[-1] == {"type": "websocket.close", "code": 1013, "reason": ""}
    assert viewers == 0
