"""PostgreSQL backend CPU per stored application, as the processor writes them.

    .venv/bin/python -m benchmarks.insert_cost [--rows 10000] [--runs 3]

Each run: a fresh database on the machine's PostgreSQL (tests/throwaway), migrated by
PostgresStore, a warm-up, then `--rows` realistic applications (synthetic, assessed,
their ~4 KB stored documents) written in batches of the processor's size through the
store's own one-statement INSERT. The backend's CPU (utime + stime of
/proc/<pg_backend_pid>/stat, so the server must run on this machine) over the rows
is the figure: what each index on `applications` costs the hot path.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from tests.throwaway.postgres import SHARED_ADMIN_URL, fresh_database

from loanflow.backends.postgres import store as postgres_store
from loanflow.backends.postgres.store import PostgresStore
from loanflow.domain.assess import assess
from loanflow.domain.product import load_product
from loanflow.loadgen.synthetic import generate
from loanflow.models import Application, Envelope, new_application_id
from loanflow.pipeline.processor import stored_document
from loanflow.store.base import ApplicationRecord

#: The processor's default batch size (settings.py).
BATCH = 200
WARM_UP_ROWS = 2_000
_TICK_S = 1 / os.sysconf("SC_CLK_TCK")
_NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)


def records(count: int, rng: random.Random) -> list[ApplicationRecord]:
    """`count` processed applications as the processor stores them."""
    product = load_product()
    made = []
    for _ in range(count):
        application = msgspec.convert(generate(rng, now=_NOW), Application)
        assessment = assess(application, product=product, today=_NOW.date())
        now_ns = time.time_ns()
        envelope = Envelope(
            id=new_application_id(now_ns), received_at_ns=now_ns, api_key_id="bench",
            idempotency_key=new_application_id(), channel=application.channel,
            partner_id=application.partner_id, external_id=application.external_id,
            sealed_application=b"",
        )
        fields: dict[str, Any] = {
            "id": envelope.id, "status": assessment.outcome, "api_key_id": "bench",
            "idempotency_key": envelope.idempotency_key, "channel": application.channel,
            "partner_id": application.partner_id, "external_id": application.external_id,
            "received_at_ns": now_ns, "processed_at_ns": now_ns + 5_000_000,
            "ssn_hash": hashlib.sha256(application.applicant.ssn.encode()).hexdigest(),
            "pii_sealed": os.urandom(60),
            "document": msgspec.json.encode(stored_document(application, assessment)),
            "rules_version": assessment.rules_version,
            "product_version": assessment.product_version,
        }
        if "route" in ApplicationRecord.__struct_fields__:
            enrichment = assessment.enrichment
            fields["route"] = enrichment.route if enrichment is not None else None
        made.append(ApplicationRecord(**fields))
    return made


def backend_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) * _TICK_S  # utime, stime


async def one_run(url: str, batch: list[ApplicationRecord], warm: list[ApplicationRecord]
                  ) -> float:
    store = PostgresStore(url)
    await store.open()  # migrates
    await store.close()
    conn = await asyncpg.connect(url)
    try:
        await postgres_store._init_connection(conn)
        pid = await conn.fetchval("SELECT pg_backend_pid()")

        async def write(rows: list[ApplicationRecord]) -> None:
            for start in range(0, len(rows), BATCH):
                part = postgres_store._rows(rows[start:start + BATCH])
                await conn.execute(postgres_store._INSERT, *postgres_store._columns(part))

        await write(warm)
        before = backend_cpu_s(pid)
        await write(batch)
        return (backend_cpu_s(pid) - before) / len(batch) * 1e6
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--admin-url", default=SHARED_ADMIN_URL)
    args = parser.parse_args()
    rng = random.Random(20)
    made = records(args.rows + WARM_UP_ROWS, rng)
    warm, batch = made[:WARM_UP_ROWS], made[WARM_UP_ROWS:]
    size = statistics.mean(len(r.document) for r in batch)
    costs = []
    for _ in range(args.runs):
        with fresh_database(args.admin_url) as url:
            costs.append(asyncio.run(one_run(url, batch, warm)))
    print(f"{args.rows} rows of {size / 1024:.1f} KB documents, batches of {BATCH}: backend "
          f"CPU per row median {statistics.median(costs):.1f} µs "
          f"(runs: {', '.join(f'{c:.1f}' for c in costs)})")


if __name__ == "__main__":
    main()
