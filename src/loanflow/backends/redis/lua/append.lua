-- Take the rate limit, claim the idempotency key and enqueue the envelope of
-- each submission of a group, in one atomic step per group.
-- KEYS: STREAM, then for each submission: idempotency key, application key, rate bucket
-- ARGV: key TTL in s, then for each submission six values: idempotency record
--       (idempotency.py), application id, received_at_ns, envelope (msgpack), rate per
--       s (0: no limit), burst
-- Returns for each submission: {0, entry id} accepted, {1, record} or (a hash written
-- by an earlier version) {1, fingerprint, id, received_at_ns} the key's earlier claim,
-- or {2, wait ms} over the rate limit.
local ttl = ARGV[1]
local now_ms = nil
-- Each bucket is read once and written once per call, however many submissions share it.
local buckets = {}
local function bucket_of(key, rate, burst)
  local b = buckets[key]
  if not b then
    if not now_ms then
      local t = redis.call('TIME')
      now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    local held = redis.call('HMGET', key, 'tokens', 'at')
    local tokens = tonumber(held[1]) or burst
    local at = tonumber(held[2]) or now_ms
    b = {tokens = math.min(burst, tokens + math.max(0, now_ms - at) * rate / 1000),
         rate = rate, burst = burst}
    buckets[key] = b
  end
  return b
end
local out = {}
for i = 1, (#KEYS - 1) / 3 do
  local idem, app, bucket = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  local a = 6 * i - 4
  local prior = redis.pcall('GET', idem)
  if type(prior) == 'table' then  -- WRONGTYPE: the hash of an earlier version
    local held = redis.call('HMGET', idem, 'fp', 'id', 'at')
    out[i] = {1, held[1], held[2], held[3]}
  elseif prior then
    out[i] = {1, prior}
  else
    local rate, wait_ms = tonumber(ARGV[a + 4]), 0
    if rate > 0 then
      local b = bucket_of(bucket, rate, tonumber(ARGV[a + 5]))
      if b.tokens >= 1 then
        b.tokens = b.tokens - 1
      else
        wait_ms = math.ceil((1 - b.tokens) * 1000 / rate)
      end
    end
    if wait_ms > 0 then
      out[i] = {2, wait_ms}
    else
      local entry = redis.call('XADD', KEYS[1], '*', 'id', ARGV[a + 1], 'e', ARGV[a + 3])
      redis.call('SET', idem, ARGV[a], 'EX', ttl)
      redis.call('HSET', app, 'at', ARGV[a + 2], 'entry', entry)
      out[i] = {0, entry}
    end
  end
end
-- Refused or not, a bucket keeps its refill time: as ratelimit.py does.
for key, b in pairs(buckets) do
  redis.call('HSET', key, 'tokens', tostring(b.tokens), 'at', now_ms)
  redis.call('PEXPIRE', key, math.ceil(b.burst * 1000 / b.rate) + 1000)
end
return out
