"""PostgreSQL stopped for 5 s under load: the work waits in the broker, nothing is
dead-lettered, and every accepted application ends stored exactly once."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.api.test_submit import submit
from tests.conftest import Deployment, ServerProcess, create_key, sample_application
from tests.throwaway.postgres import PostgresServer
from tests.throwaway.redis import RedisServer

pytestmark = pytest.mark.slow

OUTAGE_S = 5.0


def count(url: str, sql: str) -> int:
    async def run() -> int:
        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()

    return asyncio.run(run())


def test_a_store_outage_under_load_loses_nothing_and_dead_letters_nothing(tmp_path: Path):
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis_server = RedisServer(redis_dir).start()
    postgres = PostgresServer().start()
    server: ServerProcess | None = None
    try:
        deployment = Deployment(tmp_path, broker_url=redis_server.url, store_url=postgres.url)
        key = create_key(deployment, "submit,read")
        server = ServerProcess(deployment, max_attempts="2").start()
        accepted: dict[str, str] = {}
        stop = threading.Event()

        def load() -> None:
            # A well-behaved client: an unknown answer (5xx) is retried with the same key.
            with httpx.Client(base_url=server.url, timeout=10) as client:
                while not stop.is_set():
                    idem = str(uuid.uuid4())
                    for _ in range(100):
                        answer = submit(client, key, sample_application(), idem=idem)
                        if answer.status_code == 202:
                            accepted[idem] = answer.json()["id"]
                            break
                        assert answer.status_code == 503, answer.text
                        time.sleep(0.2)
                    time.sleep(0.005)

        loader = threading.Thread(target=load)
        loader.start()
        time.sleep(1.0)  # load before the outage
        postgres.stop()
        time.sleep(OUTAGE_S)
        postgres.start()
        time.sleep(1.0)  # load after it
        stop.set()
        loader.join(timeout=60)

        deadline = time.monotonic() + 60
        while count(postgres.url, "SELECT count(*) FROM applications") < len(accepted):
            assert time.monotonic() < deadline, "backlog did not drain"
            time.sleep(0.2)
        rows = asyncio.run(_rows(postgres.url))
        dead = count(postgres.url, "SELECT count(*) FROM dead_letters")
    finally:
        if server is not None:
            server.stop()
        postgres.remove()
        redis_server.stop()

    assert len(accepted) > 100
    assert dead == 0
    assert {(idem, app_id) for app_id, idem, status in rows} == set(accepted.items())
    assert {status for _, _, status in rows} == {"stored"}


async def _rows(url: str) -> list[tuple[str, str, str]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(  # type: ignore[misc]
            "SELECT id, idempotency_key, status FROM applications")]
    finally:
        await conn.close()
