"""The production metrics series: per-second hashes in Redis, merged by one Lua script.

A flush is one EVALSHA: for each delta it claims `flush:<process>:<seq>`
(SET NX) and only then adds its fields to the second's hash and to the
totals, so the whole flush is atomic and a retry after a lost reply is a
no-op. Second hashes expire after RETENTION_S; totals never expire. Key
layout: `keys.py`. Every Redis error becomes MetricsUnavailable.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from loanflow.backends.redis import keys
from loanflow.backends.redis.client import OnClient, Script, run_script
from loanflow.backends.redis.errors import unavailable_as
from loanflow.metrics import names
from loanflow.metrics.series_base import RETENTION_S, MetricsUnavailable, TaggedDelta
from loanflow.metrics.tally import Tally, flatten, unflatten

# KEYS: totals-counters, totals-histograms, then (second key, flush key) per delta.
# ARGV: ttl_s, then per delta: n_added, n_added x (field, amount),
#       n_maxed, n_maxed x (field, value).
FLUSH_LUA = """
local ttl = ARGV[1]
local a = 2
local applied = 0
for k = 3, #KEYS, 2 do
  local second_key, flush_key = KEYS[k], KEYS[k + 1]
  local fresh = redis.call('SET', flush_key, '1', 'NX', 'EX', ttl)
  local n_added = tonumber(ARGV[a])
  local added_at = a + 1
  a = added_at + 2 * n_added
  local n_maxed = tonumber(ARGV[a])
  local maxed_at = a + 1
  a = maxed_at + 2 * n_maxed
  if fresh then
    for j = added_at, added_at + 2 * n_added - 1, 2 do
      local field, amount = ARGV[j], ARGV[j + 1]
      redis.call('HINCRBY', second_key, field, amount)
      if string.sub(field, 1, 2) == '@COUNTER@' then
        redis.call('HINCRBY', KEYS[1], field, amount)
      else
        redis.call('HINCRBY', KEYS[2], field, amount)
      end
    end
    for j = maxed_at, maxed_at + 2 * n_maxed - 1, 2 do
      local field, value = ARGV[j], ARGV[j + 1]
      local current = redis.call('HGET', second_key, field)
      if (not current) or tonumber(value) > tonumber(current) then
        redis.call('HSET', second_key, field, value)
      end
    end
    redis.call('EXPIRE', second_key, ttl)
    applied = applied + 1
  end
end
return applied
""".replace("@COUNTER@", names.FIELD_COUNTER)
_FLUSH = Script.of(FLUSH_LUA)


class RedisSeries(OnClient):
    unavailable = MetricsUnavailable
    label = "redis metrics"

    async def write(self, deltas: Sequence[TaggedDelta]) -> int:
        if not deltas:
            return 0
        redis = self._redis()
        script_keys = [keys.TOTAL_COUNTERS, keys.TOTAL_HISTOGRAMS]
        args: list[str | int] = [RETENTION_S]
        for delta in deltas:
            script_keys += [keys.second_key(delta.second), keys.flush_key(delta.process, delta.seq)]
            added, maxed = flatten(delta.tally)
            for fields in (added, maxed):
                args.append(len(fields))
                for field, value in fields:
                    args += [field, value]
        with _unavailable("write"):
            applied = await run_script(redis, _FLUSH, script_keys, args)
        return int(applied)

    async def read_seconds(self, first_s: int, last_s: int) -> dict[int, Tally]:
        redis = self._redis()
        seconds = range(first_s, last_s + 1)
        with _unavailable("read_seconds"):
            async with redis.pipeline(transaction=False) as pipe:
                for second in seconds:
                    pipe.hgetall(keys.second_key(second))
                replies: list[dict[bytes, bytes]] = await pipe.execute()
        return {
            second: unflatten((f.decode(), int(v)) for f, v in reply.items())
            for second, reply in zip(seconds, replies, strict=True)
            if reply
        }

    async def read_totals(self, *, histograms: bool = True) -> Tally:
        redis = self._redis()
        with _unavailable("read_totals"):
            async with redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(keys.TOTAL_COUNTERS)
                if histograms:
                    pipe.hgetall(keys.TOTAL_HISTOGRAMS)
                replies: list[dict[bytes, bytes]] = await pipe.execute()
        return unflatten((f.decode(), int(v)) for reply in replies for f, v in reply.items())


def _unavailable(action: str) -> contextlib.AbstractContextManager[None]:
    return unavailable_as(MetricsUnavailable, f"redis metrics {action}")
