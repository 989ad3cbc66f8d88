"""(extra) Batched durable intake - a sketch of what 'good' looks like, for comparison with app_naive.
Raw ASGI + msgspec validate/enrich in the request; the request then awaits a group commit:
one writer task per worker takes everything queued (<= MAX rows), stores it with ONE
INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING (one transaction), pipelines
one XADD per row to Redis, and only then resolves the waiting requests: 202 == durably stored."""
import asyncio
import os

import asyncpg
import msgspec
import orjson
import redis.asyncio as aioredis

from loan_models import MLoan, enrich

DSN = os.environ["REF_DATABASE_URL"]
SQL = """INSERT INTO loans (idempotency_key, risk_tier, monthly_payment, dti, doc)
         SELECT * FROM unnest($1::text[], $2::text[], $3::numeric[], $4::real[], $5::jsonb[])
         ON CONFLICT (idempotency_key) DO NOTHING"""
MAX = 1000
DEC, ENC = msgspec.json.Decoder(MLoan), msgspec.json.Encoder()
H = [(b"content-type", b"application/json")]


class Writer:
    def __init__(self):
        self.buf, self.wake = [], asyncio.Event()

    async def start(self):
        self.con = await asyncpg.connect(DSN)
        self.redis = aioredis.Redis.from_url(os.environ["REF_REDIS_URL"])
        self.task = asyncio.get_running_loop().create_task(self.run())

    def submit(self, row):
        fut = asyncio.get_running_loop().create_future()
        self.buf.append((row, fut))
        self.wake.set()
        return fut

    async def run(self):
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.buf:
                batch, self.buf = self.buf[:MAX], self.buf[MAX:]
                try:
                    await self.con.execute(SQL, *zip(*(r[:5] for r, _ in batch)))
                    pipe = self.redis.pipeline(transaction=False)
                    for r, _ in batch:
                        pipe.xadd("loans:events", {"id": r[0], "tier": r[1], "amount": r[5]},
                                  maxlen=100_000, approximate=True)
                    await pipe.execute()
                    for _, f in batch:
                        f.set_result(None)
                except Exception as e:  # fail the whole batch; clients retry with the same key
                    for _, f in batch:
                        if not f.done():
                            f.set_exception(e)


W = Writer()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            if m["type"] == "lifespan.startup":
                await W.start()
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
        pay, dti, tier = enrich(x.annual_income, x.employment.monthly_debt_payments, x.requested_amount,
                                x.term_months)
        await W.submit((x.idempotency_key, tier, pay, dti, ENC.encode(x).decode(), x.requested_amount))
        status, out = 202, {"id": x.idempotency_key, "status": "accepted", "risk_tier": tier,
                            "monthly_payment": pay, "dti": dti}
    except (msgspec.ValidationError, msgspec.DecodeError) as e:
        status, out = 422, {"error": str(e)}
    except Exception:
        status, out = 503, {"error": "storage unavailable"}
    await send({"type": "http.response.start", "status": status, "headers": H})
    await send({"type": "http.response.body", "body": orjson.dumps(out)})
