-- Enqueue an envelope again (a replay from the dead letters), claiming no key:
-- the application keeps its id, so the store's upsert can never double it.
-- Whatever the broker still holds of the application (the dead-lettered delivery,
-- its ack still riding on its processor's next reserve; an earlier replay) is
-- replaced: its entry is acked and deleted, so that holder's late ack, retry or
-- release matches nothing and cannot take the replay with it.
-- KEYS: STREAM, application key, DELAYED
-- ARGV: application id, received_at_ns, envelope (msgpack), group
-- Returns the new entry id.
local held = redis.call('HGET', KEYS[2], 'entry')
if held and held ~= '' then
  redis.call('XACK', KEYS[1], ARGV[4], held)
  redis.call('XDEL', KEYS[1], held)
end
redis.call('ZREM', KEYS[3], ARGV[1])
local entry = redis.call('XADD', KEYS[1], '*', 'id', ARGV[1], 'e', ARGV[3])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'at', ARGV[2], 'entry', entry)
return entry
