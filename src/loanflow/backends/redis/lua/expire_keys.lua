-- Forget idempotency keys received before a cutoff. Only for a caller-given
-- clock (tests, operators): in real time the TTL set on append does it.
-- KEYS: idempotency keys; ARGV: the cutoff received_at_ns as its high and low 32 bits
-- (a Lua number holds 53 bits exactly, a time in ns needs 61)
local hi, lo = tonumber(ARGV[1]), tonumber(ARGV[2])
local forgotten = 0
for _, key in ipairs(KEYS) do
  local value = redis.pcall('GET', key)
  local older
  if type(value) == 'table' then  -- WRONGTYPE: the hash of an earlier version
    local at = redis.call('HGET', key, 'at')
    older = at and tonumber(at) < hi * 4294967296 + lo
  elseif value then  -- idempotency.py: received_at_ns at bytes 17-24
    local at_hi, at_lo = struct.unpack('>I4I4', string.sub(value, 17, 24))
    older = at_hi < hi or (at_hi == hi and at_lo < lo)
  end
  if older then
    redis.call('DEL', key)
    forgotten = forgotten + 1
  end
end
return forgotten
