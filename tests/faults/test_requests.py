"""Faults 6 and 7: hostile traffic rather than broken parts — one key sent by 100
clients at once, and applications that make the processor fail every time."""

from __future__ import annotations

import asyncio
import time

import pytest

from loanflow.backends.redis.ratelimit import RedisTokenBucketLimiter
from tests.conftest import api_key

pytestmark = pytest.mark.faults

PRE_S = 2.0
POST_S = 2.0
#: Marks the poison applications (LOANFLOW_FAIL_MARKER, test only).
POISON = "poison-"


@pytest.mark.timeout(90)
def test_100_concurrent_requests_with_one_key_make_one_application(bench):
    with bench() as b:
        b.load_for(PRE_S)
        answers = b.load.burst(100)
        healed_at = time.monotonic()
        b.load_for(POST_S)
        outcome = b.finish("6 100 concurrent requests, one key", healed_at=healed_at)

    outcome.assert_clean()  # doubled = 0: one row for the key
    assert [status for status, _ in answers] == [202] * 100
    assert len({app_id for _, app_id in answers}) == 1, "the answers disagree on the id"


def test_a_burst_of_rate_limit_checks_waits_for_a_redis_connection(fault_redis):
    # Found by the burst above: the limiter's pool refused the 101st concurrent check
    # (MaxConnectionsError, answered 503) although Redis was fine.
    async def burst() -> list[object]:
        limiter = RedisTokenBucketLimiter.from_url(fault_redis.url, rate_per_s=1e6, burst=1_000_000)
        await limiter.open()
        try:
            return await asyncio.gather(*(limiter.acquire(api_key("k")) for _ in range(300)),
                                        return_exceptions=True)
        finally:
            await limiter.close()

    assert asyncio.run(burst()) == [None] * 300


@pytest.mark.timeout(90)
def test_poison_applications_are_dead_lettered_and_their_neighbours_stored(bench):
    poison_every = 50
    with bench(fail_marker=POISON, max_attempts="3",
               driver_options={"poison_marker": POISON, "poison_every": poison_every}) as b:
        b.load_for(PRE_S + POST_S)
        outcome = b.finish("7 poison applications (1 in 50)")
        poisoned = [s for s in b.load.submissions.values() if s.poison and s.ids]

    # misfiled = 0: each poison one dead_lettered with its dead letter, every other stored.
    outcome.assert_clean()
    assert len(poisoned) >= 10
