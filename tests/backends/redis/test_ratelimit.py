"""The Redis token bucket: concurrent checks share round trips and stay exact."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from loanflow.backends.redis.ratelimit import RedisTokenBucketLimiter
from loanflow.errors import BrokerUnavailable, RateLimited
from tests.conftest import api_key
from tests.throwaway.redis import RedisServer

#: Each test starts a throwaway Redis: the slow tier.
pytestmark = pytest.mark.slow


def burst_of_checks(url: str, count: int, *, burst: int) -> list[object]:
    async def main() -> list[object]:
        # A rate too slow to refill during the test: exactly `burst` checks may pass.
        limiter = RedisTokenBucketLimiter.from_url(url, rate_per_s=0.001, burst=burst)
        await limiter.open()
        try:
            return await asyncio.gather(*(limiter.acquire(api_key("key-a")) for _ in range(count)),
                                        return_exceptions=True)
        finally:
            await limiter.close()

    return asyncio.run(main())


def test_concurrent_checks_let_exactly_the_burst_through(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    try:
        outcomes = burst_of_checks(server.url, 300, burst=100)
    finally:
        server.stop()

    assert outcomes.count(None) == 100
    assert sum(isinstance(o, RateLimited) for o in outcomes) == 200


def test_every_check_in_flight_when_redis_is_gone_is_an_outage(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    server.stop()

    outcomes = burst_of_checks(server.url, 20, burst=100)

    assert all(isinstance(o, BrokerUnavailable) for o in outcomes), outcomes
