-- Forget idempotency keys received before a cutoff. Only for a caller-given
-- clock (tests, operators): in real time the 72 h TTL set on append does it.
-- KEYS: idempotency keys; ARGV: cutoff received_at_ns
local forgotten = 0
for _, key in ipairs(KEYS) do
  local at = redis.call('HGET', key, 'at')
  if at and tonumber(at) < tonumber(ARGV[1]) then
    redis.call('DEL', key)
    forgotten = forgotten + 1
  end
end
return forgotten
