"""Lean two-hop intake, the worker half: take up to 500 envelopes from the stream (consumer group),
open and decode each, enrich it (payment, DTI, tier), store the batch with one multi-row INSERT
(idempotent on the stream id), then XACK + XDEL in one pipeline. Delivery is at least once; the
store write makes the effect exactly once. Run: python worker_twohop.py NAME"""
import asyncio
import os
import sys

import asyncpg
import msgspec
import redis.asyncio as aioredis
import uvloop
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app_twohop import KEY, STREAM
from loan_models import MLoan, enrich

DSN = os.environ["REF_DATABASE_URL"]
GROUP = "workers"
SQL = """INSERT INTO twohop (id, idempotency_key, risk_tier, monthly_payment, dti, doc)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[], $5::real[], $6::json[])
         ON CONFLICT (id) DO NOTHING"""
AEAD, DEC, ENC = AESGCM(KEY), msgspec.json.Decoder(MLoan), msgspec.json.Encoder()


async def main(name):
    r = aioredis.Redis.from_url(os.environ["REF_REDIS_URL"])
    try:
        await r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except aioredis.ResponseError:
        pass  # the group exists
    con = await asyncpg.connect(DSN)
    while True:
        got = await r.xreadgroup(GROUP, name, {STREAM: ">"}, count=500, block=50)
        if not got:
            continue
        entries = got[0][1]
        cols = ([], [], [], [], [], [])
        for sid, fields in entries:
            env = fields[b"e"]
            x = DEC.decode(AEAD.decrypt(env[:12], env[12:], None))
            pay, dti, tier = enrich(x.annual_income, x.employment.monthly_debt_payments, x.requested_amount,
                                    x.term_months)
            for col, v in zip(cols, (sid.decode(), x.idempotency_key, tier, pay, dti, ENC.encode(x).decode())):
                col.append(v)
        await con.execute(SQL, *cols)
        ids = [sid for sid, _ in entries]
        pipe = r.pipeline(transaction=False)
        pipe.xack(STREAM, GROUP, *ids)
        pipe.xdel(STREAM, *ids)
        await pipe.execute()


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1] if len(sys.argv) > 1 else "w1"))
