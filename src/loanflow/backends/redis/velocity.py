"""Velocity counts in Redis: a sorted set per hashed value, shared by every host.

Member = application id, score = received_at in µs. One script call per batch adds
every observation (ZADD NX: a redelivered application keeps its one member), counts
each one's window with ZCOUNT, drops members older than KEEP_WINDOWS windows and
renews each set's TTL. A sorted set is exact for "more than N in the last M minutes";
fixed-window INCR counters are not (a burst straddling a window edge is split in two).
Derived data (see velocity.py): the sets expire on their own, and losing them costs
at most a missed flag. Every Redis error becomes VelocityUnavailable.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Final

from loanflow.backends.redis import keys
from loanflow.backends.redis.client import OnClient, Script, run_script
from loanflow.backends.redis.errors import unavailable_as
from loanflow.pipeline.velocity import KEEP_WINDOWS, Observation, VelocityUnavailable

# KEYS: one sorted set per observation (a key may repeat).
# ARGV: keep_after_us, ttl_ms, then per observation: member, at_us, "(" .. window start.
# Returns the count of each observation's window. Lua does no arithmetic on the
# scores: Lua 5.1 numbers print in %.14g, so the window bounds come ready-made.
OBSERVE_LUA: Final = """
local keep_after, ttl = ARGV[1], ARGV[2]
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], 'NX', ARGV[3 * i + 1], ARGV[3 * i])
end
local counts = {}
for i = 1, #KEYS do
  counts[i] = redis.call('ZCOUNT', KEYS[i], ARGV[3 * i + 2], ARGV[3 * i + 1])
end
local pruned = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  if not pruned[key] then
    pruned[key] = true
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. keep_after)
    redis.call('PEXPIRE', key, ttl)
  end
end
return counts
"""
_OBSERVE: Final = Script.of(OBSERVE_LUA)


class RedisVelocityCounter(OnClient):
    unavailable = VelocityUnavailable
    label = "redis velocity"

    async def observe(
        self, observations: Sequence[Observation], *, window_us: int, now_us: int
    ) -> list[int]:
        if not observations:
            return []
        redis = self._redis()
        keep_us = KEEP_WINDOWS * window_us
        # PEXPIRE wants ms: round up, so a set never expires before its last member is due.
        args: list[str | int] = [now_us - keep_us, -(-keep_us // 1000)]
        for o in observations:
            args += [o.application_id, o.at_us, f"({o.at_us - window_us}"]
        with _unavailable("observe"):
            counts = await run_script(
                redis, _OBSERVE, [keys.VELOCITY_PREFIX + o.key for o in observations], args
            )
        return [int(count) for count in counts]


def _unavailable(action: str) -> contextlib.AbstractContextManager[None]:
    return unavailable_as(VelocityUnavailable, f"redis velocity {action}")
