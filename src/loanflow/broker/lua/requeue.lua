-- Enqueue an envelope again (a replay from the dead letters), claiming no key:
-- the application keeps its id, so the store's upsert can never double it.
-- KEYS: STREAM, application key
-- ARGV: application id, received_at_ns, envelope (msgpack)
-- Returns 1 when enqueued, 0 when the broker already holds this application.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
local entry = redis.call('XADD', KEYS[1], '*', 'id', ARGV[1], 'e', ARGV[3])
redis.call('HSET', KEYS[2], 'at', ARGV[2], 'entry', entry, 'n', 0, 'lease', 0)
return 1
