"""Lean two-hop intake, the API half: the request is decoded and validated (msgspec), its body
fingerprinted (HMAC-SHA256) and sealed (AES-256-GCM), then awaits a group append: one Lua call per
group claims each idempotency key and XADDs the sealed envelope; 202 after Redis answered.
worker_twohop.py is the other half (stream -> enrich -> PostgreSQL). Same wrk body as app_batched."""
import asyncio
import hashlib
import hmac
import os
import time

import msgspec
import orjson
import redis.asyncio as aioredis
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from loan_models import MLoan

STREAM = "twohop:apps"
KEY = b"k" * 32  # a fixed key: this is a speed reference, not a secret store
AEAD, HKEY = AESGCM(KEY), hashlib.sha256(b"hash" + KEY).digest()
DEC = msgspec.json.Decoder(MLoan)
H = [(b"content-type", b"application/json")]
# KEYS: idempotency keys; ARGV: for each, fingerprint then envelope. Returns the stream id, or the
# earlier fingerprint's stream id for a replay, or "" for a key reused with another body.
APPEND = """
local out = {}
for i, key in ipairs(KEYS) do
  local fp, env = ARGV[2 * i - 1], ARGV[2 * i]
  local old = redis.call('GET', key)
  if old then
    local sep = string.find(old, '|', 1, true)
    if string.sub(old, 1, sep - 1) == fp then out[i] = string.sub(old, sep + 1) else out[i] = '' end
  else
    local id = redis.call('XADD', 'twohop:apps', '*', 'e', env)
    redis.call('SET', key, fp .. '|' .. id, 'EX', 86400)
    out[i] = id
  end
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

    def append(self, key, fp, env):
        fut = asyncio.get_running_loop().create_future()
        self.buf.append((key, fp, env, fut))
        self.wake.set()
        return fut

    async def run(self):
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.buf:
                batch, self.buf = self.buf[:500], self.buf[500:]
                args = []
                for _, fp, env, _ in batch:
                    args += (fp, env)
                try:
                    ids = await self.r.evalsha(self.sha, len(batch), *(b[0] for b in batch), *args)
                    for (_, _, _, fut), i in zip(batch, ids):
                        fut.set_result(i)
                except Exception as exc:  # noqa: BLE001 - every waiter learns the outcome
                    for *_, fut in batch:
                        fut.set_exception(exc)


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
    body, more = b"", True
    while more:
        m = await receive()
        body += m.get("body", b"")
        more = m.get("more_body", False)
    try:
        x = DEC.decode(body)
        fp = hmac.digest(HKEY, body, "sha256").hex()
        nonce = os.urandom(12)
        env = nonce + AEAD.encrypt(nonce, body, None)
        sid = await A.append("idem:" + x.idempotency_key, fp, env)
        if not sid:
            status, out = 422, {"error": "idempotency key reused with another body"}
        else:
            status, out = 202, {"id": sid.decode() if isinstance(sid, bytes) else sid, "status": "queued",
                                "received_at_ns": time.time_ns()}
    except (msgspec.ValidationError, msgspec.DecodeError) as e:
        status, out = 422, {"error": str(e)}
    except Exception:  # noqa: BLE001
        status, out = 503, {"error": "broker unavailable"}
    await send({"type": "http.response.start", "status": status, "headers": H})
    await send({"type": "http.response.body", "body": orjson.dumps(out)})
