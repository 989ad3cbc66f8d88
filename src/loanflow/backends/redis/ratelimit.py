"""Per-key token buckets in Redis, shared by every API process on every host.

One Lua script refills and takes tokens atomically, timed by the Redis server's
clock (hosts' clocks never disagree about a bucket). When Redis cannot be
reached the request is refused with 503, as the append would be anyway.
Checks of concurrent requests go to Redis together, one pipeline per event-loop
turn (`Coalescer`): a round trip per request would cost more client CPU than
the rest of the request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Unpack

from loanflow.apikeys import ApiKey
from loanflow.backends.redis import keys
from loanflow.backends.redis.client import ClientOptions, RedisClient
from loanflow.backends.redis.errors import unavailable_as
from loanflow.broker.base import RateLimit
from loanflow.broker.ratelimit import check_limit
from loanflow.coalesce import Coalescer
from loanflow.errors import BrokerUnavailable, RateLimited

#: Keys whose RateLimit is kept made (one per key, not one per request).
MAX_CACHED_LIMITS = 10_000

BUCKET_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local wait_ms = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait_ms = math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait_ms
"""


class RedisTokenBucketLimiter:
    def __init__(self, client: RedisClient, *, rate_per_s: float, burst: int) -> None:
        check_limit(rate_per_s, burst)
        self._client, self._owns_client = client, False
        self._redis = client.redis  # bound once: the running loop's redis.asyncio client
        self._rate, self._burst = rate_per_s, burst
        self._checks: Coalescer[tuple[RateLimit, int], int] = Coalescer(self._check_many)
        self._limits: dict[str, RateLimit] = {}

    @classmethod
    def from_url(
        cls, url: str, *, rate_per_s: float, burst: int, **options: Unpack[ClientOptions]
    ) -> RedisTokenBucketLimiter:
        """A limiter with a client of its own, opened and closed with it (tests, tools)."""
        limiter = cls(RedisClient(url, **options), rate_per_s=rate_per_s, burst=burst)
        limiter._owns_client = True
        return limiter

    def __repr__(self) -> str:
        return f"RedisTokenBucketLimiter({self._client!r})"

    async def open(self) -> None:
        if self._owns_client:
            await self._client.open()

    async def close(self) -> None:
        if self._owns_client:
            await self._client.close()

    def for_append(self, key: ApiKey) -> RateLimit | None:
        """A submission's token is taken by the broker's append, in the same script and
        from the same bucket as `acquire`'s."""
        limit = self._limits.get(key.id)
        if limit is None:
            if len(self._limits) >= MAX_CACHED_LIMITS:
                self._limits.clear()
            rate, burst = key.limit(self._rate, self._burst)
            limit = self._limits[key.id] = RateLimit(key.id, rate, burst)
        return limit if limit.rate_per_s else None

    async def acquire(self, key: ApiKey, cost: int = 1) -> None:
        limit = self.for_append(key)
        if limit is None:
            return
        wait_ms = await self._checks.append((limit, cost))
        if wait_ms:
            raise RateLimited(
                f"over {limit.rate_per_s:g}/s for this key; retry after {wait_ms / 1000:.3f}s",
                retry_after_s=max(1, math.ceil(wait_ms / 1000)),
            )

    async def _check_many(self, checks: Sequence[tuple[RateLimit, int]]) -> list[int]:
        """Each check's wait in ms (0: allowed), in order; one round trip for all."""
        redis = self._redis()
        with unavailable_as(BrokerUnavailable, "rate limit check"):
            async with redis.pipeline(transaction=False) as pipe:
                for limit, cost in checks:
                    # EVAL, not EVALSHA: Redis caches it by hash, and a restarted Redis
                    # (which forgets loaded scripts) needs no reload.
                    pipe.eval(BUCKET_LUA, 1, keys.RATE_LIMIT_PREFIX + limit.bucket,
                              limit.rate_per_s, limit.burst, cost)
                return [int(wait_ms) for wait_ms in await pipe.execute()]
