"""The production metrics series: per-second hashes in Redis, merged by one Lua script.

A flush is one EVALSHA: for each delta it claims `flush:<process>:<seq>`
(SET NX) and only then adds its fields to the second's hash and to the
totals, so the whole flush is atomic and a retry after a lost reply is a
no-op. Once a minute has settled, one process rolls it up: it reads the 60
second hashes and, in one MULTI under WATCH, writes the minute's merged
tally, replaces each hash by its packed form, and deletes the hashes (a
flush landing in between makes it start over, so no count is dropped).
Seconds expire after SECOND_RETENTION_S, minutes after MINUTE_RETENTION_S;
totals never expire. Key layout: `keys.py`. Every Redis error becomes
MetricsUnavailable.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import WatchError

from loanflow.backends.redis import keys
from loanflow.backends.redis.client import OnClient, Script, run_script
from loanflow.backends.redis.errors import unavailable_as
from loanflow.metrics import names
from loanflow.metrics.series_base import (
    FLUSH_DEDUP_S,
    MINUTE_RETENTION_S,
    MINUTE_S,
    SECOND_RETENTION_S,
    MetricsUnavailable,
    TaggedDelta,
)
from loanflow.metrics.tally import Tally, flatten, merge_into, merged, pack, unflatten, unpack

log = logging.getLogger(__name__)

#: A process rolling up a minute has it to itself this long (then another may retry).
ROLL_UP_CLAIM_S = 30
#: Times a roll-up starts over when flushes keep landing in its minute.
ROLL_UP_ATTEMPTS = 3
#: Seconds read per pipeline (two commands each).
READ_CHUNK_S = 300

# KEYS: totals-counters, totals-histograms, then (second key, flush key) per delta.
# ARGV: flush key ttl_s, second ttl_s, then per delta: n_added, n_added x (field, amount),
#       n_maxed, n_maxed x (field, value).
FLUSH_LUA = """
local ttl, second_ttl = ARGV[1], ARGV[2]
local a = 3
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
    redis.call('EXPIRE', second_key, second_ttl)
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
        args: list[str | int] = [FLUSH_DEDUP_S, SECOND_RETENTION_S]
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
        tallies: dict[int, Tally] = {}
        with _unavailable("read_seconds"):
            for start in range(first_s, last_s + 1, READ_CHUNK_S):
                seconds = range(start, min(start + READ_CHUNK_S, last_s + 1))
                async with redis.pipeline(transaction=False) as pipe:
                    for second in seconds:
                        pipe.get(keys.packed_second_key(second))
                        pipe.hgetall(keys.second_key(second))
                    replies: list[bytes | dict[bytes, bytes] | None] = await pipe.execute()
                for i, second in enumerate(seconds):
                    packed, fields = replies[2 * i], replies[2 * i + 1]
                    tally = _tally_of(packed, fields)
                    if tally is not None:
                        tallies[second] = tally
        return tallies

    async def roll_up(self, minutes: Sequence[int]) -> list[int]:
        if not minutes:
            return []
        redis = self._redis()
        rolled = []
        with _unavailable("roll_up"):
            async with redis.pipeline(transaction=False) as pipe:
                for minute in minutes:
                    pipe.exists(keys.minute_key(minute))
                done: list[int] = await pipe.execute()
            for minute, exists in zip(minutes, done, strict=True):
                if exists or not await redis.set(keys.roll_up_claim_key(minute), "1",
                                                 nx=True, ex=ROLL_UP_CLAIM_S):
                    continue
                if await _roll_up_minute(redis, minute):
                    rolled.append(minute)
        return rolled

    async def read_minutes(self, first_s: int, last_s: int) -> dict[int, Tally]:
        redis = self._redis()
        first_minute = -(-first_s // MINUTE_S) * MINUTE_S  # the first that starts in range
        minutes = range(first_minute, last_s + 1, MINUTE_S)
        tallies: dict[int, Tally] = {}
        with _unavailable("read_minutes"):
            for start in range(0, len(minutes), READ_CHUNK_S):
                chunk = minutes[start:start + READ_CHUNK_S]
                packed = await redis.mget([keys.minute_key(m) for m in chunk])
                tallies.update((m, unpack(blob)) for m, blob in zip(chunk, packed, strict=True)
                               if isinstance(blob, bytes))
        return tallies

    async def read_totals(self, *, histograms: bool = True) -> Tally:
        redis = self._redis()
        with _unavailable("read_totals"):
            async with redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(keys.TOTAL_COUNTERS)
                if histograms:
                    pipe.hgetall(keys.TOTAL_HISTOGRAMS)
                replies: list[dict[bytes, bytes]] = await pipe.execute()
        return unflatten((f.decode(), int(v)) for reply in replies for f, v in reply.items())


def _tally_of(packed: object, fields: object) -> Tally | None:
    """A second from its packed form, its hash, or both (a flush later than the roll-up)."""
    tally = unpack(packed) if isinstance(packed, bytes) else None
    if isinstance(fields, dict) and fields:
        fresh = unflatten((f.decode(), int(v)) for f, v in fields.items())
        tally = fresh if tally is None else merge_into(tally, fresh)
    return tally


async def _roll_up_minute(redis: Redis, minute: int) -> bool:
    """Pack the minute's second hashes and write its tally, unless another process did.

    WATCH makes the MULTI fail if a flush touched one of the hashes after it was
    read (it would be deleted with the count in it): then read again."""
    second_keys = [keys.second_key(s) for s in range(minute, minute + MINUTE_S)]
    minute_key = keys.minute_key(minute)
    async with redis.pipeline(transaction=True) as tx:
        for _ in range(ROLL_UP_ATTEMPTS):
            try:
                await tx.watch(minute_key, *second_keys)
                if await tx.exists(minute_key):
                    return False  # rolled up by another process after our check
                async with redis.pipeline(transaction=False) as read:
                    for key in second_keys:
                        read.hgetall(key)
                    replies: list[dict[bytes, bytes]] = await read.execute()
                seconds = {minute + i: unflatten((f.decode(), int(v)) for f, v in reply.items())
                           for i, reply in enumerate(replies) if reply}
                tx.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                for second, tally in seconds.items():
                    tx.set(keys.packed_second_key(second), pack(tally), ex=SECOND_RETENTION_S)
                tx.set(minute_key, pack(merged(seconds.values())), ex=MINUTE_RETENTION_S)
                tx.delete(*second_keys)
                await tx.execute()
                return True
            except WatchError:
                log.info("roll-up of minute %d met a late flush: reading it again", minute)
                continue
    log.warning("roll-up of minute %d gave up after %d attempts", minute, ROLL_UP_ATTEMPTS)
    return False


def _unavailable(action: str) -> contextlib.AbstractContextManager[None]:
    return unavailable_as(MetricsUnavailable, f"redis metrics {action}")
