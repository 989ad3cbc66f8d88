"""Faults 1, 2 and 5: loanflow's own processes die or are restarted under load.

Production mode (throwaway Redis with AOF + PostgreSQL), 2 `loanflow api` and
2 `loanflow worker` processes, ~300 submissions/s with 5% repeated keys.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis

from loanflow.backends.redis import keys as redis_keys
from tests.faults.cluster import Proc
from tests.faults.state import Backends

pytestmark = pytest.mark.faults

PRE_S = 2.0
POST_S = 2.0


def in_hand(proc: Proc, backends: Backends) -> list[str]:
    """Application ids the worker process holds (its consumer's pending entries)."""
    # `Runtime.processor` names its consumers <host>-<pid>-<loop index>.
    consumer = f"{os.uname().nodename}-{proc.pid}-0"
    with redis.Redis.from_url(backends.deployment.broker_url, socket_timeout=5) as r:
        pending = r.xpending_range(redis_keys.STREAM, redis_keys.GROUP, min="-", max="+",
                                   count=10_000, consumername=consumer)
        ids = []
        for entry in pending:
            [(_, fields)] = r.xrange(redis_keys.STREAM, entry["message_id"],
                                     entry["message_id"])
            ids.append(fields[b"id"].decode())
    return ids


def kill_mid_batch(proc: Proc, backends: Backends, *, tries: int = 200) -> list[str]:
    """SIGKILL `proc` while it holds a batch; the ids it held.

    SIGSTOP first, so what it holds cannot change while we look: a stopped
    worker with pending entries is killed, one with none is let go and caught
    again a moment later."""
    for _ in range(tries):
        os.kill(proc.pid, signal.SIGSTOP)
        held = in_hand(proc, backends)
        if held:
            proc.kill()
            return held
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.01)
    raise AssertionError(f"{proc.name} never held a batch in {tries} looks")


@pytest.mark.timeout(90)
def test_a_worker_killed_mid_batch_loses_and_doubles_nothing(bench):
    with bench() as b:  # a 3 s lease (conftest): the dead worker's batch comes back soon
        b.load_for(PRE_S)
        victim = b.cluster.workers[0]
        stranded = set(kill_mid_batch(victim, b.backends))
        killed_at = time.monotonic()
        # Killed before or after its store commit: either way unacked, so redelivered.
        stored_at_kill = len(stranded & b.backends.snapshot().stored_ids)
        # Recovery: until the other worker has taken the dead one's batch again, stored
        # it and acked it (after the lease), while the load goes on.
        while True:
            snap = b.backends.snapshot()
            if stranded <= snap.stored_ids and not stranded & snap.held:
                break
            assert time.monotonic() - killed_at < 30, "the dead worker's batch was not redone"
            time.sleep(0.2)
        recovered_s = time.monotonic() - killed_at
        victim.start()  # as a process manager would
        b.load_for(POST_S)
        fault = (f"1 worker SIGKILL mid-batch ({len(stranded)} in hand"
                 f" of which {stored_at_kill} committed)")
        outcome = b.finish(fault, healed_at=killed_at, recovery=recovered_s)
    outcome.assert_clean()


@pytest.mark.timeout(90)
def test_an_api_process_killed_under_load_loses_nothing(bench):
    with bench() as b:
        b.load_for(PRE_S)
        victim = b.cluster.apis[0]
        victim.kill()  # the other API process keeps serving; clients retry there
        b.load_for(1.0)
        victim.start()
        healed_at = time.monotonic()
        b.load_for(POST_S)
        outcome = b.finish("2 API process SIGKILL", healed_at=healed_at)
    outcome.assert_clean()


@pytest.mark.timeout(120)
def test_a_rolling_restart_of_every_process_loses_nothing(bench):
    with bench() as b:
        b.load_for(PRE_S)
        for proc in b.cluster.procs:
            exit_code = proc.terminate()
            assert exit_code in (0, -signal.SIGTERM), f"{proc.name} did not stop gracefully"
            proc.start()
        healed_at = time.monotonic()
        b.load_for(POST_S)
        outcome = b.finish("5 rolling SIGTERM restart (4 processes)", healed_at=healed_at)
    outcome.assert_clean()
