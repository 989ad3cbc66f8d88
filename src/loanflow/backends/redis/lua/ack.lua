-- Forget envelopes whose results the store committed.
-- KEYS: STREAM
-- ARGV: group, APPLICATION_PREFIX, then pairs of entry id, application id
-- XDEL with the XACK keeps only unacked work in the stream: XLEN is the
-- depth, and no trimming is ever needed (so none can drop unacked entries).
local acked = 0
for i = 3, #ARGV, 2 do
  local entry, app = ARGV[i], ARGV[2] .. ARGV[i + 1]
  if redis.call('XACK', KEYS[1], ARGV[1], entry) == 1 then
    redis.call('XDEL', KEYS[1], entry)
    acked = acked + 1
    -- Keep the hash if the envelope already moved on (a retry parked it).
    if redis.call('HGET', app, 'entry') == entry then
      redis.call('DEL', app)
    end
  end
end
return acked
