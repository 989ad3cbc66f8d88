"""Lean product floor, the worker half: worker_twohop.py's loop (XREADGROUP 500, one store
statement per batch, then XACK + XDEL in one pipeline) doing loanflow's required per-batch work,
each step through loanflow's own code: open and decode each envelope into a models.Application;
the review flags with one call per batch to each backend (pipeline.review_flags.ReviewFlags: the
store's ssn_matches and a VelocityCheck over loanflow's Redis velocity counter, both at once);
domain.assess.assess with the findings; pipeline.processor.stored_document; SSN and date of
birth sealed; the batch written with PostgresStore.save_results (loanflow's schema and indexes,
migrated by PostgresStore.open()). Leaves out: metrics, events, retries and dead letters, the
poison-message isolation, the product file's reload, backlog loops.
Run: python worker_product.py NAME (env: app_product.py's, and REF_DATABASE_URL)."""
import asyncio
import datetime as dt
import os
import sys
import time

import msgspec
import uvloop

from app_product import CIPHER, STREAM
from loanflow.backends.postgres.store import PostgresStore
from loanflow.backends.redis.client import RedisClient
from loanflow.backends.redis.velocity import RedisVelocityCounter
from loanflow.domain.assess import assess
from loanflow.domain.flags import NO_FINDINGS
from loanflow.domain.product import load_product
from loanflow.models import Application, Envelope, Status
from loanflow.pipeline.processor import stored_document, warm_up
from loanflow.pipeline.review_flags import ReviewFlags
from loanflow.pipeline.velocity import VelocityCheck
from loanflow.settings import Settings
from loanflow.store.base import ApplicationRecord

GROUP = "workers"
DEC_ENVELOPE = msgspec.msgpack.Decoder(Envelope).decode
DEC_APPLICATION = msgspec.msgpack.Decoder(Application).decode
ENC_JSON = msgspec.json.Encoder().encode


def record(envelope, application, findings, product, flags):
    """Processor._assess and _record without the metrics, events and fault markers."""
    received = dt.datetime.fromtimestamp(envelope.received_at_ns / 1e9, tz=dt.UTC).date()
    assessment = assess(application, product=product, today=received, flags=findings.flags,
                        evidence=findings.evidence)
    applicant = application.applicant
    return ApplicationRecord(
        id=envelope.id,
        status=Status(assessment.outcome).value,
        route=assessment.enrichment.route if assessment.enrichment is not None else None,
        api_key_id=envelope.api_key_id,
        idempotency_key=envelope.idempotency_key,
        channel=envelope.channel,
        partner_id=envelope.partner_id,
        external_id=envelope.external_id,
        received_at_ns=envelope.received_at_ns,
        processed_at_ns=time.time_ns(),
        ssn_hash=flags.ssn_hash(application),
        pii_sealed=CIPHER.seal(ENC_JSON({"ssn": applicant.ssn.replace("-", ""),
                                         "dob": applicant.date_of_birth})),
        document=ENC_JSON(stored_document(application, assessment)),
        rules_version=assessment.rules_version,
        product_version=assessment.product_version,
    )


async def main(name):
    settings = Settings()
    client = RedisClient(os.environ["REF_REDIS_URL"])
    await client.open()
    store = PostgresStore(os.environ["REF_DATABASE_URL"], statement_timeout_s=settings.store_timeout_s)
    await store.open()
    velocity = RedisVelocityCounter(client)
    await velocity.open()
    flags = ReviewFlags(store, CIPHER, VelocityCheck(
        velocity, hash_key=CIPHER.subkey("velocity"), limit=settings.velocity_limit,
        ip_limit=settings.velocity_ip_limit, window_s=settings.velocity_window_s))
    product = load_product()
    warm_up()
    r = client.redis()
    try:
        await r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except Exception as exc:  # noqa: BLE001
        if "BUSYGROUP" not in str(exc):
            raise
    while True:
        got = await r.xreadgroup(GROUP, name, {STREAM: ">"}, count=500, block=50)
        if not got:
            continue
        entries = got[0][1]
        batch = []
        for _, fields in entries:
            envelope = DEC_ENVELOPE(fields[b"e"])
            batch.append((envelope, DEC_APPLICATION(CIPHER.open(envelope.sealed_application))))
        found = await flags.find(batch, now_ns=time.time_ns())
        await store.save_results([record(e, a, found.get(e.id, NO_FINDINGS), product, flags)
                                  for e, a in batch])
        ids = [sid for sid, _ in entries]
        pipe = r.pipeline(transaction=False)
        pipe.xack(STREAM, GROUP, *ids)
        pipe.xdel(STREAM, *ids)
        await pipe.execute()


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1] if len(sys.argv) > 1 else "w1"))
