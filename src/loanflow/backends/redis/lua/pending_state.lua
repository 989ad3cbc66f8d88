-- {state, received_at_ns} of an application the broker holds, else nil.
-- KEYS: application key, STREAM
-- ARGV: group, lease in ms
-- Held by a processor: its entry is in the group's pending list and its lease,
-- counted from the delivery, has not run out.
local held = redis.call('HMGET', KEYS[1], 'at', 'entry')
if not held[1] then
  return false
end
local entry = held[2]
if entry and entry ~= '' then
  local pending = redis.call('XPENDING', KEYS[2], ARGV[1], entry, entry, 1)
  if pending[1] and tonumber(pending[1][3]) < tonumber(ARGV[2]) then
    return {'processing', held[1]}
  end
end
return {'queued', held[1]}
