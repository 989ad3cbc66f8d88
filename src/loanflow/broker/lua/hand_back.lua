-- Take envelopes back from their holder and park them in DELAYED until ready.
-- retry_later: an updated envelope, the delivery stays counted;
-- release: the envelope as it is, the delivery uncounted.
-- KEYS: STREAM, DELAYED
-- ARGV: group, APPLICATION_PREFIX, delay in ms, uncount ("1" or "0"),
--   then quadruples: entry id, deliveries at handout, application id, envelope ("" = as is)
-- A stale holder (its lease ran out and another consumer took the entry) is
-- ignored: (entry, deliveries) names one delivery. Returns how many moved.
local stream, delayed = KEYS[1], KEYS[2]
local group, prefix, uncount = ARGV[1], ARGV[2], ARGV[4] == '1'
local t = redis.call('TIME')
local ready_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3])
local moved = 0
for i = 5, #ARGV, 4 do
  local entry, id, env = ARGV[i], ARGV[i + 2], ARGV[i + 3]
  local app = prefix .. id
  local held = redis.call('HMGET', app, 'entry', 'n')
  if held[1] == entry and held[2] == ARGV[i + 1] then
    if env == '' then
      env = redis.call('XRANGE', stream, entry, entry)[1][2][4]
    end
    -- XACK first: it is never refused at maxmemory, so this works while full.
    redis.call('XACK', stream, group, entry)
    redis.call('XDEL', stream, entry)
    redis.call('HSET', app, 'env', env, 'entry', '', 'lease', 0)
    if uncount then
      redis.call('HINCRBY', app, 'n', -1)
    end
    redis.call('ZADD', delayed, ready_ms, id)
    moved = moved + 1
  end
end
return moved
