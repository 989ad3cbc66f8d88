"""Fault 12: the PostgreSQL primary is lost under load; its synchronous standby is promoted.

A throwaway primary with `synchronous_standby_names` naming a standby made by
`pg_basebackup -R` (tests/throwaway/postgres_standby.py), loanflow on the multi-host
URL `postgresql://primary,standby/db?target_session_attrs=read-write`. Under the
steady load the primary goes (a) down: `pg_ctl stop -m immediate`, its port closed,
or (b) silent: SIGSTOP, connections accepted and never answered, as a lost host or a
partition looks to a client; then the standby is promoted (`pg_ctl promote`).

Every COMMIT the workers saw was on the standby too (synchronous), and a worker acks a
batch only after its COMMIT: a batch cut off mid-commit stays in Redis and is stored
again, idempotent on the id. So lost, doubled and stuck are 0. Measured: from the
fault until the first result is stored on the new primary (the workers resumed).
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import Deployment
from tests.faults.conftest import VISIBILITY_TIMEOUT_S
from tests.faults.harness import Bench
from tests.faults.reconcile import Outcome
from tests.faults.state import Backends
from tests.throwaway.postgres import execute_sql
from tests.throwaway.postgres_standby import ReplicatedPostgres
from tests.throwaway.redis import RedisServer

pytestmark = pytest.mark.faults

DATABASE = "loanflow"
PRE_S = 3.0
POST_S = 3.0
#: The store's statement timeout (its client gives up 1 s later): how long a worker
#: waits on a primary that no longer answers before it drops the connection.
STORE_TIMEOUT_S = "2"
#: Bound on the workers storing again on the new primary, from the fault.
RESUME_BOUND_S = 20.0
POLL_S = 0.05


@pytest.fixture
def replicated() -> Iterator[ReplicatedPostgres]:
    pair = ReplicatedPostgres().start()
    try:
        yield pair
    finally:
        pair.remove()


@pytest.fixture
def failover_bench(
    replicated: ReplicatedPostgres, fault_redis: RedisServer, tmp_path: Path,
    record_outcome: Callable[[Outcome], None],
) -> Bench:
    if fault_redis.proc is None or fault_redis.proc.poll() is not None:
        fault_redis.start()
    else:
        fault_redis.thaw()
    with fault_redis.client() as r:
        r.config_set("maxmemory", 0)
        r.flushall()
    execute_sql(replicated.primary.url, f"CREATE DATABASE {DATABASE}")  # on both
    deployment = Deployment(tmp_path / "data", broker_url=fault_redis.url,
                            store_url=replicated.url(DATABASE))
    return Bench(deployment, tmp_path / "logs", record_outcome, settings={
        "visibility_timeout_s": VISIBILITY_TIMEOUT_S, "store_timeout_s": STORE_TIMEOUT_S})


def fail_over_under_load(
    b: Bench, pair: ReplicatedPostgres, lose_primary: Callable[[], None]
) -> tuple[float, float]:
    """(seconds to promote, seconds from the fault until a result is stored on the new
    primary)."""
    assert pair.standby is not None
    new_primary = pair.standby.url.rpartition("/")[0] + f"/{DATABASE}"
    b.load_for(PRE_S)
    lost_at = time.monotonic()
    lose_primary()
    pair.standby.promote()
    promoted_s = time.monotonic() - lost_at
    # The ground truth is read from the new primary: the lost one may never answer.
    reader = copy.copy(b.deployment)
    reader.store_url = new_primary
    b.backends = Backends(reader)
    resumed_s = wait_for_a_new_result(new_primary, since=lost_at)
    b.load_for(POST_S)
    return promoted_s, resumed_s


def wait_for_a_new_result(url: str, *, since: float) -> float:
    async def count(conn: asyncpg.Connection) -> int:
        return int(await conn.fetchval("SELECT count(*) FROM applications"))

    async def wait() -> float:
        conn = await asyncpg.connect(url, timeout=5, command_timeout=5)
        try:
            before = await count(conn)
            while time.monotonic() - since < RESUME_BOUND_S:
                if await count(conn) > before:
                    return time.monotonic() - since
                await asyncio.sleep(POLL_S)
            return float("inf")
        finally:
            await conn.close(timeout=5)

    return asyncio.run(wait())


@pytest.mark.timeout(120)
def test_primary_stopped_and_standby_promoted_loses_and_doubles_nothing(
    failover_bench: Bench, replicated: ReplicatedPostgres,
) -> None:
    with failover_bench as b:
        promoted_s, resumed_s = fail_over_under_load(
            b, replicated, replicated.primary.stop_immediate)
        outcome = b.finish(f"12 PostgreSQL primary stopped (immediate), synchronous standby"
                           f" promoted (promoted {promoted_s:.1f} s)", recovery=resumed_s)

    outcome.assert_clean()
    assert resumed_s < RESUME_BOUND_S, outcome.line()


@pytest.mark.timeout(120)
def test_primary_host_silent_and_standby_promoted_loses_and_doubles_nothing(
    failover_bench: Bench, replicated: ReplicatedPostgres,
) -> None:
    # The lost primary stays frozen until the end (then SIGKILLed): thawed, it would
    # be a second primary.
    with failover_bench as b:
        promoted_s, resumed_s = fail_over_under_load(
            b, replicated, replicated.primary.freeze)
        outcome = b.finish(f"12 PostgreSQL primary silent (SIGSTOP), synchronous standby"
                           f" promoted (promoted {promoted_s:.1f} s)", recovery=resumed_s)

    outcome.assert_clean()
    assert resumed_s < RESUME_BOUND_S, outcome.line()
