-- Claim an idempotency key and enqueue its envelope, in one atomic step.
-- KEYS: idempotency key, STREAM, application key
-- ARGV: fingerprint, application id, received_at_ns, envelope (msgpack), key TTL in s
-- Returns {entry id} when accepted, else the stored {fingerprint, id, received_at_ns}.
local prior = redis.call('HMGET', KEYS[1], 'fp', 'id', 'at')
if prior[1] then
  return prior
end
-- XADD is the first write: at maxmemory Redis refuses it and the script stops
-- before writing anything, so a refused append never leaves a claimed key.
local entry = redis.call('XADD', KEYS[2], '*', 'id', ARGV[2], 'e', ARGV[4])
redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'id', ARGV[2], 'at', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('HSET', KEYS[3], 'at', ARGV[3], 'entry', entry, 'n', 0, 'lease', 0)
return {entry}
