"""One process's metrics parts started and stopped as a lifespan would."""

from __future__ import annotations

import asyncio
from pathlib import Path

from loanflow.backends.sqlite.events import SQLiteEventLog
from loanflow.backends.sqlite.series import SQLiteSeries
from loanflow.metrics import names
from loanflow.metrics.events import make_event
from loanflow.metrics.parts import open_metrics
from loanflow.metrics.series_base import QueueState


def test_stopping_the_background_tasks_flushes_what_was_recorded(tmp_path: Path) -> None:
    async def lifespan(received: int) -> dict[str, int]:
        series = SQLiteSeries(tmp_path / "metrics.db")
        events = SQLiteEventLog(tmp_path / "events.db")
        async with open_metrics(series, events, queue_probe=lambda: QueueState(depth=5)) as metrics:
            stop = asyncio.Event()
            tasks = [asyncio.create_task(coro, name=name)
                     for name, coro in metrics.background(stop, live=True)]
            metrics.recorder.count(names.RECEIVED, received)
            metrics.publisher.publish(make_event(
                names.EVENT_OPERATOR_ACTION, application_id="dl-1", code="replay",
                message="replayed by key k1",
            ))
            await asyncio.sleep(0)  # the tasks start; none has flushed yet
            stop.set()
            await asyncio.gather(*tasks)
            summary = await metrics.aggregator.summary()
            events, _ = await metrics.events.recent(10)
        assert [e.code for e in events][-1] == "replay"
        assert summary.queue.depth == 5
        return summary.totals

    assert asyncio.run(lifespan(3))["received"] == 3
    assert asyncio.run(lifespan(4))["received"] == 7  # a restarted process adds on
