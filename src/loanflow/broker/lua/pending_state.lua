-- {state, received_at_ns} of an application the broker holds, else nil.
-- KEYS: application key
local held = redis.call('HMGET', KEYS[1], 'at', 'lease')
if not held[1] then
  return false
end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(held[2] or '0') > now_ms then
  return {'processing', held[1]}
end
return {'queued', held[1]}
