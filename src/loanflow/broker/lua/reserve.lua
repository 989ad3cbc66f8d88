-- Hand up to `count` envelopes to one consumer, in one atomic step:
-- 1. move due delayed envelopes back to the stream's tail,
-- 2. claim entries whose holder let the lease run out (XAUTOCLAIM),
-- 3. read new entries (XREADGROUP '>'; a script never blocks).
-- KEYS: STREAM, DELAYED, CLAIM_CURSOR
-- ARGV: group, consumer, count, lease in ms, APPLICATION_PREFIX
-- Returns {{{entry id, envelope, deliveries}, ...}, last}: with nothing to hand out,
-- `last` is the newest id the stream ever gave (an idle consumer's XREAD BLOCK waits
-- for anything after it: an append between this script and that read still wakes it).
local stream, delayed, cursor_key = KEYS[1], KEYS[2], KEYS[3]
local group, consumer, count = ARGV[1], ARGV[2], tonumber(ARGV[3])
local lease_ms, prefix = tonumber(ARGV[4]), ARGV[5]
-- Server time, so leases and delays do not depend on each host's clock.
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

for _, id in ipairs(redis.call('ZRANGEBYSCORE', delayed, '-inf', now_ms, 'LIMIT', 0, count)) do
  -- ZREM first: at maxmemory Redis refuses a script's first write only if it
  -- may grow memory (XADD would be), and processors must drain even then.
  redis.call('ZREM', delayed, id)
  local app = prefix .. id
  local env = redis.call('HGET', app, 'env')
  if env then
    local entry = redis.call('XADD', stream, '*', 'id', id, 'e', env)
    redis.call('HSET', app, 'entry', entry)
    redis.call('HDEL', app, 'env')
  end
end

local taken = {}
local cursor = redis.call('GET', cursor_key) or '0-0'
local claimed = redis.call('XAUTOCLAIM', stream, group, consumer, lease_ms, cursor, 'COUNT', count)
if claimed[1] ~= cursor then
  -- Only on change: an idle poll must write nothing (each write is an AOF fsync).
  redis.call('SET', cursor_key, claimed[1])
end
for _, e in ipairs(claimed[2]) do
  if type(e[2]) == 'table' then taken[#taken + 1] = e end
end
if #taken < count then
  local fresh = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count - #taken,
    'STREAMS', stream, '>')
  if fresh then
    for _, e in ipairs(fresh[1][2]) do taken[#taken + 1] = e end
  end
end

local out = {}
for i, e in ipairs(taken) do
  local app = prefix .. e[2][2]
  local n = redis.call('HINCRBY', app, 'n', 1)
  redis.call('HSET', app, 'lease', now_ms + lease_ms)
  out[i] = {e[1], e[2][4], n}
end
local last = ''
if #out == 0 then
  local info = redis.call('XINFO', 'STREAM', stream)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then last = info[i + 1] end
  end
end
return {out, last}
