"""The lean product floor (benchmarks/references/app_product.py + worker_product.py), started as
the round-robin starts it, over throwaway Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from benchmarks.harness.roundrobin import Targets, write_bodies
from benchmarks.harness.service import Production

pytestmark = pytest.mark.slow
BENCHMARKS = Path(__file__).resolve().parents[1]


async def _rows(url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return await conn.fetch("SELECT id, status, idempotency_key, ssn_hash, pii_sealed"
                                " FROM applications ORDER BY idempotency_key")
    finally:
        await conn.close()


@pytest.mark.timeout(60)
def test_lean_product_stores_each_accepted_application_once(tmp_path: Path) -> None:
    write_bodies(tmp_path / "roundrobin-bodies.ndjson", count=3)  # Targets keeps this file
    bodies = (tmp_path / "roundrobin-bodies.ndjson").read_bytes().splitlines()
    production = Production.start()
    try:
        running = Targets(production, tmp_path, BENCHMARKS, api_workers=1,
                          processors=1).start("lean-product")
        try:
            auth = {"Authorization": f"Bearer {running.wrk_env['WRK_KEY']}",
                    "Content-Type": "application/json"}
            with httpx.Client(base_url=running.url, timeout=10) as client:

                def post(body: bytes, key: str, headers: dict[str, str] = auth) -> httpx.Response:
                    return client.post("/v1/applications", content=body,
                                       headers={**headers, "Idempotency-Key": key})

                accepted = [post(body, f"key-{n}") for n, body in enumerate(bodies)]
                replayed = post(bodies[0], "key-0")
                reused = post(bodies[1], "key-0")
                invalid = post(b'{"applicant":{},"loan":{}}', "key-invalid")
                anonymous = post(bodies[2], "key-anonymous", {"Content-Type": "application/json"})
            assert [r.status_code for r in accepted] == [202, 202, 202]
            assert replayed.status_code == 202
            assert replayed.json() == {"id": accepted[0].json()["id"], "status": "queued"}
            assert (reused.status_code, invalid.status_code, anonymous.status_code) == (
                422, 422, 401)
            deadline = time.monotonic() + 15
            while running.stored() < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.3)  # a second copy would land by now
            rows = asyncio.run(_rows(running.database_url))
        finally:
            running.stop()
    finally:
        production.remove()
    assert [(r["id"], r["idempotency_key"]) for r in rows] == [
        (a.json()["id"], f"key-{n}") for n, a in enumerate(accepted)]
    assert {r["status"] for r in rows} <= {"stored", "rejected"}
    assert all(r["ssn_hash"] and r["pii_sealed"] for r in rows)
