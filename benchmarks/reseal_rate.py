"""How fast `loanflow pii reseal` re-seals stored applications, per store and batch size.

    .venv/bin/python -m benchmarks.reseal_rate [--rows 20000] [--batch 100 500 2000]
                                                [--store postgres sqlite]

Each run: a fresh store (a database on the machine's PostgreSQL from tests/throwaway,
or a SQLite file in a temporary directory) holding `--rows` realistic applications
(synthetic, assessed, their ~4 KB documents) whose PII is sealed with an old key, then
the re-seal of all of them under a new key as the command runs it (rotation/reseal.py),
timed from its first read to its last commit. Prints rows re-sealed per second, and the
CPU each row cost this process and (PostgreSQL, on this machine) the server backends
serving it: on a busy machine the rate varies with what else runs, the CPU much less.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from pathlib import Path

import msgspec
from tests.throwaway.postgres import SHARED_ADMIN_URL, fresh_database

from benchmarks.insert_cost import backend_cpu_s, records
from loanflow.backends.postgres.store import PostgresStore
from loanflow.backends.sqlite.store import SQLiteStore
from loanflow.pii import PiiCipher
from loanflow.rotation.reseal import ResealTally, reseal
from loanflow.store.base import ApplicationRecord, Store

#: The processor's batch size: rows are stored as it stores them.
SAVE_BATCH = 200


async def backend_pids(store: Store) -> list[int]:
    """PostgreSQL: the pids of the store's pool connections to its database."""
    if not isinstance(store, PostgresStore):
        return []
    async with store._connection("bench") as conn:
        return [int(pid) for pid in await conn.fetchval(
            "SELECT array_agg(pid) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'loanflow'")]


def cpu_s(pids: list[int]) -> float:
    return sum(backend_cpu_s(pid) for pid in pids)


async def one_run(
    store: Store, rows: list[ApplicationRecord], batch: int
) -> tuple[float, float, float]:
    """Rows per second; CPU µs per row of this process and of the server's backends."""
    old_key, new_key = os.urandom(32), os.urandom(32)
    old, rotated = PiiCipher([old_key]), PiiCipher([new_key, old_key])
    sealed = msgspec.json.encode({"ssn": "123456789", "dob": "1985-12-10"})
    await store.open()
    try:
        for start in range(0, len(rows), SAVE_BATCH):
            await store.save_results([msgspec.structs.replace(r, pii_sealed=old.seal(sealed))
                                      for r in rows[start:start + SAVE_BATCH]])
        tally = ResealTally(to_key=rotated.key_id)
        pids = await backend_pids(store)  # the pool keeps its connections for the run
        started, own, server = time.perf_counter(), time.process_time(), cpu_s(pids)
        await reseal(store, rotated, tally, batch=batch)
        elapsed = time.perf_counter() - started
        own, server = time.process_time() - own, cpu_s(pids) - server
        assert tally.applications == len(rows) and tally.complete, tally.summary()
        return len(rows) / elapsed, own / len(rows) * 1e6, server / len(rows) * 1e6
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, nargs="+", default=[100, 500, 2000])
    parser.add_argument("--store", nargs="+", default=["postgres", "sqlite"])
    parser.add_argument("--admin-url", default=SHARED_ADMIN_URL)
    args = parser.parse_args()
    # Unique ids per run: records() draws them from the clock.
    made = records(args.rows, random.Random(20))
    for kind in args.store:
        for batch in args.batch:
            if kind == "postgres":
                with fresh_database(args.admin_url) as url:
                    rate, own, server = asyncio.run(
                        one_run(PostgresStore(url, max_pool=1), made, batch))
            else:
                with tempfile.TemporaryDirectory() as directory:
                    rate, own, server = asyncio.run(
                        one_run(SQLiteStore(Path(directory) / "store.db"), made, batch))
            backends = f", server {server:,.0f}" if kind == "postgres" else ""
            print(f"{kind:>8}  {args.rows:,} rows  batch {batch:>5,}: {rate:>8,.0f} rows/s"
                  f"  (CPU µs per row: this process {own:,.0f}{backends})", flush=True)


if __name__ == "__main__":
    main()
