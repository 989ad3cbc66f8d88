-- Make due work readable by the XREADGROUP that follows this script in the same
-- pipeline, in one atomic step:
-- 1. move due delayed envelopes back to the stream's tail,
-- 2. when asked (`scan` = "1"), re-add at the tail the entries whose holder let
--    the lease run out (XAUTOCLAIM finds them), so that a fresh read hands them
--    out again and the old entry id, and with it the old holder's token, is void.
-- Envelopes of the common path never pass through here: read outside a script,
-- they are not copied into and out of Lua.
-- An entry's field `n` is the deliveries before it (absent: none), so a reader
-- counts base + 1.
-- KEYS: STREAM, DELAYED, CLAIM_CURSOR
-- ARGV: group, consumer, count, lease in ms, APPLICATION_PREFIX, scan ("1" or "0")
-- Returns how many envelopes it made ready.
local stream, delayed, cursor_key = KEYS[1], KEYS[2], KEYS[3]
local group, consumer, count = ARGV[1], ARGV[2], tonumber(ARGV[3])
local lease_ms, prefix = tonumber(ARGV[4]), ARGV[5]
local moved = 0
-- Server time, so leases and delays do not depend on each host's clock.
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

for _, id in ipairs(redis.call('ZRANGEBYSCORE', delayed, '-inf', now_ms, 'LIMIT', 0, count)) do
  -- ZREM first: at maxmemory Redis refuses a script's first write only if it
  -- may grow memory (XADD would be), and processors must drain even then.
  redis.call('ZREM', delayed, id)
  local app = prefix .. id
  local held = redis.call('HMGET', app, 'env', 'n')
  if held[1] then
    local entry = redis.call('XADD', stream, '*', 'id', id, 'e', held[1], 'n', held[2] or 0)
    redis.call('HSET', app, 'entry', entry)
    redis.call('HDEL', app, 'env')
    moved = moved + 1
  end
end

if ARGV[6] == '1' then
  local cursor = redis.call('GET', cursor_key) or '0-0'
  local claimed = redis.call('XAUTOCLAIM', stream, group, consumer, lease_ms, cursor,
    'COUNT', count)
  if claimed[1] ~= cursor then
    -- Only on change: an idle scan must write nothing (each write is an AOF fsync).
    redis.call('SET', cursor_key, claimed[1])
  end
  for _, e in ipairs(claimed[2]) do
    local old, fields = e[1], e[2]
    if type(fields) == 'table' then
      -- Fields: id, <application id>, e, <envelope>[, n, <deliveries before>]
      local id = fields[2]
      local app = prefix .. id
      redis.call('XACK', stream, group, old)
      redis.call('XDEL', stream, old)
      if redis.call('HGET', app, 'entry') == old then
        local entry = redis.call('XADD', stream, '*', 'id', id, 'e', fields[4],
          'n', (tonumber(fields[6]) or 0) + 1)
        redis.call('HSET', app, 'entry', entry)
        moved = moved + 1
      end
    end
  end
end
return moved
