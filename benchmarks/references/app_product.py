"""Lean product floor, the API half: app_twohop.py's skeleton (raw ASGI, one Lua call per group)
doing loanflow's required per-request work, each step through loanflow's own code: the bearer
token (SHA-256 looked up in a dict loaded at start; 401), loanflow's body decoding and checks
(api.schema.decode_application; its 4xx), the Idempotency-Key header as the key (same body: the
same id; another body: 422), the envelope sealed and the body fingerprinted as loanflow's submit
does (api.applications.make_submission: PiiCipher seal + keyed hash), then one Lua call per group
takes each API key's token bucket (read and written once per group), claims each key and XADDs
each envelope; 202 {id, status} after Redis answered. worker_product.py is the other half.
Leaves out: metrics, events, request ids, security headers, the dashboard session path,
content-type and body-size checks, queue-depth backpressure. Env: REF_REDIS_URL, REF_PII_KEY
(base64), REF_API_KEYS (full secrets, comma-separated), REF_RATE_LIMIT_PER_S, REF_RATE_LIMIT_BURST.
"""
import asyncio
import os

import msgspec
import redis.asyncio as aioredis

from loanflow.api.applications import make_submission, valid_idempotency_key
from loanflow.api.schema import decode_application
from loanflow.apikeys import hash_key
from loanflow.backends.redis import keys
from loanflow.errors import LoanflowError
from loanflow.pii import PiiCipher, parse_keys

STREAM = "product:apps"
KEY_TTL_S = 86400
CIPHER = PiiCipher(parse_keys(os.environ["REF_PII_KEY"]))
#: sha256(secret) -> API key id (`lf_<id>_<secret>`), as loanflow's api_keys table holds them.
API_KEYS = {hash_key(s): s[3:].split("_", 1)[0]
            for s in os.environ.get("REF_API_KEYS", "").split(",") if s}
RATE_PER_S = float(os.environ.get("REF_RATE_LIMIT_PER_S", "0"))
BURST = int(os.environ.get("REF_RATE_LIMIT_BURST", "10000"))
ENC_ENVELOPE = msgspec.msgpack.Encoder().encode
ENC_JSON = msgspec.json.Encoder().encode
H = [(b"content-type", b"application/json")]
# KEYS: for each submission its idempotency key, then its API key's bucket.
# ARGV: key TTL s, rate per s (0: none), burst, then for each: fingerprint, application id,
# envelope. Returns for each: the application id (accepted, or the key's earlier claim with the
# same fingerprint), "" (the key reused with another body) or "!<wait ms>" (over the rate).
APPEND = """
local ttl, rate, burst = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now_ms = nil
local buckets = {}
local out = {}
for i = 1, #KEYS / 2 do
  local idem, bucket = KEYS[2 * i - 1], KEYS[2 * i]
  local fp, id, env = ARGV[3 * i + 1], ARGV[3 * i + 2], ARGV[3 * i + 3]
  local old = redis.call('GET', idem)
  if old then
    local sep = string.find(old, '|', 1, true)
    if string.sub(old, 1, sep - 1) == fp then out[i] = string.sub(old, sep + 1) else out[i] = '' end
  else
    local wait_ms = 0
    if rate > 0 then
      local b = buckets[bucket]
      if not b then
        if not now_ms then
          local t = redis.call('TIME')
          now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end
        local held = redis.call('HMGET', bucket, 'tokens', 'at')
        local tokens = tonumber(held[1]) or burst
        local at = tonumber(held[2]) or now_ms
        b = {tokens = math.min(burst, tokens + math.max(0, now_ms - at) * rate / 1000)}
        buckets[bucket] = b
      end
      if b.tokens >= 1 then
        b.tokens = b.tokens - 1
      else
        wait_ms = math.ceil((1 - b.tokens) * 1000 / rate)
      end
    end
    if wait_ms > 0 then
      out[i] = '!' .. wait_ms
    else
      redis.call('XADD', 'product:apps', '*', 'e', env)
      redis.call('SET', idem, fp .. '|' .. id, 'EX', ttl)
      out[i] = id
    end
  end
end
for key, b in pairs(buckets) do
  redis.call('HSET', key, 'tokens', tostring(b.tokens), 'at', now_ms)
  redis.call('PEXPIRE', key, math.ceil(burst * 1000 / rate) + 1000)
end
return out
"""


class Appender:
    def __init__(self):
        self.buf = []
        self.wake = asyncio.Event()

    async def start(self):
        self.r = aioredis.Redis.from_url(os.environ["REF_REDIS_URL"])
        self.sha = await self.r.script_load(APPEND)
        self.task = asyncio.get_running_loop().create_task(self.run())

    def append(self, idem, bucket, fp, app_id, env):
        fut = asyncio.get_running_loop().create_future()
        self.buf.append((idem, bucket, fp, app_id, env, fut))
        self.wake.set()
        return fut

    async def run(self):
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.buf:
                batch, self.buf = self.buf[:500], self.buf[500:]
                script_keys, args = [], [KEY_TTL_S, RATE_PER_S, BURST]
                for idem, bucket, fp, app_id, env, _ in batch:
                    script_keys += (idem, bucket)
                    args += (fp, app_id, env)
                try:
                    out = await self.r.evalsha(self.sha, len(script_keys), *script_keys, *args)
                    for b, i in zip(batch, out):
                        b[5].set_result(i)
                except Exception as exc:  # noqa: BLE001 - every waiter learns the outcome
                    for b in batch:
                        b[5].set_exception(exc)


A = Appender()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            if m["type"] == "lifespan.startup":
                await A.start()
                await send({"type": "lifespan.startup.complete"})
            elif m["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    authorization = idem = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value
        elif name == b"idempotency-key":
            idem = value
    body, more = b"", True
    while more:
        m = await receive()
        body += m.get("body", b"")
        more = m.get("more_body", False)
    status, out = await submit(scope, authorization, idem, body)
    await send({"type": "http.response.start", "status": status, "headers": H})
    await send({"type": "http.response.body", "body": out})


async def submit(scope, authorization, idem, body):
    key_id = None
    if authorization is not None and authorization[:7].lower() == b"bearer ":
        key_id = API_KEYS.get(hash_key(authorization[7:].strip().decode("latin-1")))
    if key_id is None:
        return 401, b'{"error":"the API key is unknown, revoked or expired"}'
    idempotency_key = idem.decode("latin-1") if idem is not None else ""
    if not valid_idempotency_key(idempotency_key):
        return 422, b'{"error":"expected an Idempotency-Key of 1-255 printable ASCII characters"}'
    try:
        application = decode_application(body)
    except LoanflowError as exc:
        return exc.status, ENC_JSON({"error": str(exc)})
    client = scope.get("client")
    s = make_submission(CIPHER, client[0] if client else None, key_id, idempotency_key,
                        application)
    envelope = s.envelope
    try:
        got = await A.append(keys.idempotency_key(key_id, idempotency_key),
                             keys.RATE_LIMIT_PREFIX + key_id, s.fingerprint, envelope.id,
                             ENC_ENVELOPE(envelope))
    except Exception:  # noqa: BLE001
        return 503, b'{"error":"broker unavailable"}'
    if not got:
        return 422, b'{"error":"idempotency key reused with another body"}'
    if got[:1] == b"!":
        return 429, b'{"error":"over this key\'s rate"}'
    return 202, b'{"id":"' + got + b'","status":"queued"}'
