-- Take envelopes back from their holder and park them in DELAYED until ready.
-- retry_later: an updated envelope, the delivery stays counted;
-- release: the envelope as it is, the delivery uncounted.
-- KEYS: STREAM, DELAYED
-- ARGV: group, APPLICATION_PREFIX, delay in ms, uncount ("1" or "0"),
--   then quadruples: entry id, deliveries at handout, application id, envelope ("" = as is)
-- A stale holder (its lease ran out and the entry was re-added under a new id, or
-- a requeue replaced it) is ignored: only the current entry is taken back.
-- Returns how many moved.
local stream, delayed = KEYS[1], KEYS[2]
local group, prefix, uncount = ARGV[1], ARGV[2], ARGV[4] == '1'
local t = redis.call('TIME')
local ready_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3])
local moved = 0
for i = 5, #ARGV, 4 do
  local entry, id, env = ARGV[i], ARGV[i + 2], ARGV[i + 3]
  local app = prefix .. id
  if redis.call('HGET', app, 'entry') == entry then
    if env == '' then
      env = redis.call('XRANGE', stream, entry, entry)[1][2][4]
    end
    -- XACK first: it is never refused at maxmemory, so this works while full.
    redis.call('XACK', stream, group, entry)
    redis.call('XDEL', stream, entry)
    local deliveries = tonumber(ARGV[i + 1])
    if uncount then
      deliveries = deliveries - 1
    end
    -- `n`: the deliveries before the entry `ready.lua` will add for it.
    redis.call('HSET', app, 'env', env, 'entry', '', 'n', deliveries)
    redis.call('ZADD', delayed, ready_ms, id)
    moved = moved + 1
  end
end
return moved
