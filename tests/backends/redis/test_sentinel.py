"""Redis behind Sentinel (`redis+sentinel://`) and appends confirmed by replicas
(LOANFLOW_REDIS_MIN_REPLICAS), on a throwaway primary, replica and three Sentinels."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loanflow.backends.redis import keys
from loanflow.backends.redis.broker import RedisStreamsBroker
from loanflow.backends.redis.client import RedisClient
from loanflow.backends.redis.ratelimit import RedisTokenBucketLimiter
from loanflow.broker.base import AppendOutcome, AppendResult, Submission
from loanflow.errors import BrokerUnavailable
from loanflow.models import Envelope, new_application_id
from tests.conftest import api_key
from tests.throwaway.sentinel import SentinelGroup

pytestmark = pytest.mark.slow

VISIBILITY_S = 30.0


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    """Shared by the tests that leave the primary alive."""
    started = SentinelGroup(tmp_path_factory.mktemp("sentinel")).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def url(group: SentinelGroup) -> str:
    group.primary().flushall()
    return group.url


def submission(key: str = "idem-1", *, fingerprint: str = "fp-1") -> Submission:
    now_ns = time.time_ns()
    envelope = Envelope(id=new_application_id(now_ns), received_at_ns=now_ns, api_key_id="key-a",
                        idempotency_key=key, channel="web", sealed_application=b"sealed")
    return Submission(envelope, fingerprint)


def broker_on(url: str, **options: int) -> RedisStreamsBroker:
    return RedisStreamsBroker.from_url(url, visibility_timeout_s=VISIBILITY_S, **options)


async def opened(broker: RedisStreamsBroker) -> RedisStreamsBroker:
    await broker.open()
    return broker


def test_a_sentinel_url_reaches_the_primary_and_checks_its_durability(
    group: SentinelGroup, url: str
) -> None:
    sub = submission()

    async def body() -> tuple[list[AppendResult], str]:
        broker = await opened(broker_on(url))
        try:
            return await broker.append([sub]), broker.durability
        finally:
            await broker.close()

    results, durability = asyncio.run(body())

    assert [r.outcome for r in results] == [AppendOutcome.ACCEPTED]
    assert durability == "redis aof always"
    with group.primary().client() as primary:
        assert primary.xlen(keys.STREAM) == 1


def test_with_one_replica_required_a_202_is_already_on_the_replica(
    group: SentinelGroup, url: str
) -> None:
    sub = submission()

    async def body() -> list[AppendResult]:
        broker = await opened(broker_on(url, min_replicas=1))
        try:
            return await broker.append([sub])
        finally:
            await broker.close()

    [result] = asyncio.run(body())

    # No waiting here: WAIT returned only once the replica had the write.
    assert result.outcome is AppendOutcome.ACCEPTED
    with group.replica().client() as replica:
        assert replica.exists(keys.idempotency_key("key-a", "idem-1"))
        assert replica.xlen(keys.STREAM) == 1


def test_too_few_replicas_is_a_503_and_the_retry_answers_the_one_application(url: str) -> None:
    # Given two replicas required of a primary that has one,
    first, retry, other_body = submission(), submission(), submission(fingerprint="fp-2")

    async def body() -> None:
        strict = await opened(broker_on(url, min_replicas=2, replica_wait_ms=50))
        enough = await opened(broker_on(url, min_replicas=1))
        try:
            # the append is refused as unavailable (503: the client retries, same key);
            with pytest.raises(BrokerUnavailable, match="1 of 2 replicas confirmed within 50 ms"):
                await strict.append([first])
            # a retry of a key still short of its replicas is refused again, not answered 202;
            with pytest.raises(BrokerUnavailable, match="1 of 2 replicas"):
                await strict.append([retry])
            # once replicas confirm, the retry answers the first application, never a second;
            assert await enough.append([retry]) == [AppendResult(
                AppendOutcome.REPLAYED, first.envelope.id, first.envelope.received_at_ns)]
            # and another body under the key is refused as a reuse, as always.
            [reused] = await enough.append([other_body])
            assert reused.outcome is AppendOutcome.KEY_REUSED
            assert await enough.depth() == 1
        finally:
            await strict.close()
            await enough.close()

    asyncio.run(body())


def test_a_worker_stores_nothing_its_replicas_have_not_confirmed(url: str) -> None:
    sub = submission()

    async def body() -> None:
        await opened_append(url, sub)
        strict = await opened(broker_on(url, min_replicas=2, replica_wait_ms=50))
        enough = await opened(broker_on(url, min_replicas=1))
        try:
            # A read its replicas do not confirm fails and hands the entry back, uncounted,
            with pytest.raises(BrokerUnavailable, match="redis reserve: 1 of 2 replicas"):
                await strict.reserve(10, consumer="c1")
            # so a confirmed read gets it as its first delivery.
            [delivery] = await enough.reserve(10, consumer="c2")
            assert (delivery.envelope.id, delivery.deliveries) == (sub.envelope.id, 1)
        finally:
            await strict.close()
            await enough.close()

    asyncio.run(body())


async def opened_append(url: str, sub: Submission) -> None:
    broker = await opened(broker_on(url))
    try:
        assert (await broker.append([sub]))[0].outcome is AppendOutcome.ACCEPTED
    finally:
        await broker.close()


@pytest.fixture
def own_group(tmp_path: Path) -> Iterator[SentinelGroup]:
    """One per test that kills its primary."""
    started = SentinelGroup(tmp_path / "sentinel").start()
    try:
        yield started
    finally:
        started.stop()


@pytest.mark.timeout(90)
def test_after_a_failover_every_service_on_the_client_follows_the_new_primary(
    own_group: SentinelGroup,
) -> None:
    before, after = submission("before"), submission("after")

    async def body() -> float:
        client = RedisClient(own_group.url)
        broker = RedisStreamsBroker(client, visibility_timeout_s=VISIBILITY_S)
        limiter = RedisTokenBucketLimiter(client, rate_per_s=1000, burst=1000)
        await client.open()
        await broker.open()
        await limiter.open()
        try:
            await broker.append([before])
            old = own_group.primary()
            old.kill()
            killed_at = time.monotonic()
            # Given the primary gone, appends fail as unavailable until the Sentinels
            # promote the replica, then succeed there, on the same client.
            while True:
                try:
                    [result] = await broker.append([after])
                    break
                except BrokerUnavailable:
                    assert time.monotonic() - killed_at < 30, "no failover within 30 s"
                    await asyncio.sleep(0.1)
            assert result.outcome is AppendOutcome.ACCEPTED
            await limiter.acquire(api_key("key-a"))  # the rate limiter, on the same client, too
            assert own_group.primary() is not old
            return time.monotonic() - killed_at
        finally:
            await broker.close()
            await client.close()

    asyncio.run(body())

    with own_group.primary().client() as primary:
        held = {f[b"id"].decode() for _, f in primary.xrange(keys.STREAM)}
    assert after.envelope.id in held
