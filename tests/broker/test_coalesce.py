"""The Coalescer: concurrent single appends share broker calls, each gets its own answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

from loanflow.backends.redis.broker import RedisStreamsBroker
from loanflow.backends.sqlite.broker import SQLiteBroker
from loanflow.broker.base import AppendOutcome, AppendResult, Broker, Submission
from loanflow.coalesce import Coalescer
from loanflow.errors import BrokerUnavailable
from loanflow.models import Envelope, new_application_id
from tests.throwaway.redis import RedisServer

T = TypeVar("T")


def submission(key: str, fingerprint: str = "fp") -> Submission:
    now_ns = time.time_ns()
    envelope = Envelope(
        id=new_application_id(now_ns), received_at_ns=now_ns, api_key_id="key-a",
        idempotency_key=key, channel="web", sealed_application=b"sealed:" + key.encode(),
    )
    return Submission(envelope, fingerprint)


class CountedCalls:
    """The real broker's append, counting the calls and their sizes."""

    def __init__(self, broker: Broker) -> None:
        self.broker, self.sizes = broker, list[int]()

    async def __call__(self, submissions: Sequence[Submission]) -> list[AppendResult]:
        self.sizes.append(len(submissions))
        return await self.broker.append(submissions)


def run_with_sqlite(tmp_path: Path, scenario: Callable[[Broker], Awaitable[T]]) -> T:
    async def main() -> T:
        broker = SQLiteBroker(tmp_path / "broker.db", visibility_timeout_s=30)
        await broker.open()
        try:
            return await scenario(broker)
        finally:
            await broker.close()

    return asyncio.run(main())


def test_concurrent_appends_share_calls_and_each_gets_its_own_answer(tmp_path: Path) -> None:
    async def scenario(broker: Broker) -> tuple[list[AppendResult], list[int], int]:
        calls = CountedCalls(broker)
        coalescer = Coalescer(calls)
        subs = [submission(f"k-{i}") for i in range(300)]
        results = await asyncio.gather(*(coalescer.append(s) for s in subs))
        return results, calls.sizes, await broker.depth()

    results, sizes, depth = run_with_sqlite(tmp_path, scenario)

    assert [r.outcome for r in results] == [AppendOutcome.ACCEPTED] * 300
    assert len({r.application_id for r in results}) == 300
    assert sum(sizes) == 300 and len(sizes) < 300 and max(sizes) <= 256
    assert depth == 300


def test_a_lone_append_goes_at_once_in_a_call_of_its_own(tmp_path: Path) -> None:
    async def scenario(broker: Broker) -> list[int]:
        calls = CountedCalls(broker)
        coalescer = Coalescer(calls)
        await coalescer.append(submission("only"))
        await coalescer.append(submission("next"))
        return calls.sizes

    assert run_with_sqlite(tmp_path, scenario) == [1, 1]


def test_the_same_key_twice_in_one_call_is_accepted_once_then_replayed(tmp_path: Path) -> None:
    async def scenario(broker: Broker) -> list[AppendOutcome]:
        coalescer = Coalescer(broker.append)
        first, again = await asyncio.gather(coalescer.append(submission("same")),
                                            coalescer.append(submission("same")))
        assert first.application_id == again.application_id
        return [first.outcome, again.outcome]

    assert run_with_sqlite(tmp_path, scenario) == [AppendOutcome.ACCEPTED,
                                                   AppendOutcome.REPLAYED]


def test_a_cancelled_request_leaves_its_neighbours_answered_and_its_append_made(
    tmp_path: Path,
) -> None:
    async def scenario(broker: Broker) -> tuple[int, int]:
        coalescer = Coalescer(broker.append)
        tasks = [asyncio.create_task(coalescer.append(submission(f"k-{i}"))) for i in range(10)]
        await asyncio.sleep(0)  # all queued
        tasks[3].cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        answered = sum(isinstance(r, AppendResult) for r in done)
        await asyncio.sleep(0.2)  # the shared call completes regardless
        return answered, await broker.depth()

    assert run_with_sqlite(tmp_path, scenario) == (9, 10)


@pytest.mark.parametrize("max_in_flight,max_batch", [(0, 10), (1, 0)])
def test_limits_below_one_are_refused(max_in_flight: int, max_batch: int) -> None:
    async def never(_: Sequence[Submission]) -> list[AppendResult]:
        raise AssertionError("not called")

    with pytest.raises(ValueError, match=">= 1"):
        Coalescer(never, max_in_flight=max_in_flight, max_batch=max_batch)


@pytest.mark.slow  # starts a process
def test_every_request_of_a_failed_call_gets_the_outage(tmp_path: Path) -> None:
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis").start()

    async def scenario() -> list[object]:
        broker = RedisStreamsBroker.from_url(server.url, visibility_timeout_s=30,
                                    socket_timeout_s=1.0, connect_timeout_s=0.5)
        await broker.open()
        try:
            server.stop()
            coalescer = Coalescer(broker.append)
            return await asyncio.gather(*(coalescer.append(submission(f"k-{i}"))
                                          for i in range(20)), return_exceptions=True)
        finally:
            await broker.close()

    try:
        outcomes = asyncio.run(scenario())
    finally:
        server.stop()

    assert all(isinstance(o, BrokerUnavailable) for o in outcomes), outcomes
