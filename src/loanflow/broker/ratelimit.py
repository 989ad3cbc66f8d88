"""Per-key token buckets: a steady rate, a burst on top, 429 + Retry-After beyond.

`RateLimiter` is what a limiter promises. `TokenBucketLimiter` lives in the API
process, for the embedded mode. With several API processes on one host each gets
an equal share of the rate (the kernel spreads connections evenly over the
shared listening socket), so the sum is the configured rate. Production uses the
shared bucket in backends/redis/ratelimit.py. A key's own rate and burst
(`loanflow keys create --rate-limit`) stand in for the service's default.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

from loanflow.apikeys import ApiKey
from loanflow.broker.base import RateLimit
from loanflow.broker.buckets import TokenBuckets
from loanflow.errors import RateLimited


class RateLimiter(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def for_append(self, key: ApiKey) -> RateLimit | None:
        """The limit a submission's append must take its token from, or None: taken here."""
        ...

    async def acquire(self, key: ApiKey, cost: int = 1) -> None:
        """Take `cost` tokens from the key's bucket, or raise RateLimited."""
        ...


def check_limit(rate_per_s: float, burst: int) -> None:
    if rate_per_s < 0 or burst < 1:
        raise ValueError(f"expected rate_per_s >= 0 and burst >= 1, got {rate_per_s}, {burst}")


class TokenBucketLimiter:
    def __init__(
        self,
        *,
        rate_per_s: float,
        burst: int,
        processes: int = 1,
        clock_s: Callable[[], float] = time.monotonic,
    ) -> None:
        check_limit(rate_per_s, burst)
        self._rate, self._burst, self._clock = rate_per_s, burst, clock_s
        self._processes = processes
        self._buckets = TokenBuckets()

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def for_append(self, key: ApiKey) -> RateLimit | None:
        """Takes a submission's token here (in-process, no I/O): nothing for the append."""
        self._take(key, 1)
        return None

    async def acquire(self, key: ApiKey, cost: int = 1) -> None:
        """Take `cost` tokens from the key's bucket, or raise RateLimited."""
        self._take(key, cost)

    def _take(self, key: ApiKey, cost: int) -> None:
        rate, burst = key.limit(self._rate, self._burst)
        # This process's share of the key's limit.
        wait_s = self._buckets.take(key.id, cost, rate_per_s=rate / self._processes,
                                    burst=max(1, burst // self._processes), now_s=self._clock())
        if wait_s:
            raise RateLimited(
                f"over {rate:g}/s for this key; retry after {wait_s:.3f}s",
                retry_after_s=max(1, math.ceil(wait_s)),
            )
