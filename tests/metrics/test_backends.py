"""Choosing the backends; one process's metrics parts started and stopped as a lifespan would."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from loanflow.backends.redis.events import RedisEventLog
from loanflow.backends.redis.series import RedisSeries
from loanflow.metrics import names
from loanflow.metrics.backends import make_event_log, make_series, open_metrics
from loanflow.metrics.events import make_event
from loanflow.metrics.series_base import QueueState
from loanflow.metrics.series_sqlite import SQLiteSeries
from loanflow.settings import Settings


def test_embedded_settings_choose_sqlite_files_in_the_data_dir(tmp_path: Path) -> None:
    series = make_series(Settings(data_dir=tmp_path))
    assert isinstance(series, SQLiteSeries) and "metrics.db" in repr(series)


def test_a_redis_broker_url_chooses_redis_and_keeps_the_password_out_of_reprs() -> None:
    settings = Settings(broker_url="redis://:s3cret@127.0.0.1:6379/0")
    series, events = make_series(settings), make_event_log(settings)
    assert isinstance(series, RedisSeries) and isinstance(events, RedisEventLog)
    assert "s3cret" not in repr(series) + repr(events)


def test_an_unknown_broker_scheme_is_refused_without_showing_the_url() -> None:
    with pytest.raises(ValueError, match=r"expected a redis:// broker URL") as caught:
        make_series(Settings(broker_url="amqp://user:s3cret@host/"))
    assert "s3cret" not in str(caught.value)


def test_stopping_the_background_tasks_flushes_what_was_recorded(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)

    async def lifespan(received: int) -> dict[str, int]:
        async with open_metrics(settings, queue_probe=lambda: QueueState(depth=5)) as metrics:
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
