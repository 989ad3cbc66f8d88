"""Faults 3 and 9: the store goes away (stopped) or stops answering (frozen) under load.

A 202 does not need the store: the application is durable in Redis and
waits there. The API keeps accepting (API keys from its cache), the workers
hand their batches back and wait, nothing is dead-lettered, and the backlog
drains once PostgreSQL is back.
"""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = pytest.mark.faults

PRE_S = 2.0
POST_S = 2.0
STOPPED_S = 10.0
FROZEN_S = 30.0
#: A small queue bound, so a long store outage reaches it within the test.
MAX_QUEUE_DEPTH = 900
#: The store's statement timeout for the freeze (the client gives up 1 s after it).
STORE_TIMEOUT_S = 2.0
#: No answer may take longer: two store calls (pool wait + statement), each bounded
#: by the timeout plus its 1 s margin, and some slack for a noisy machine.
ANSWER_BOUND_S = 2 * (STORE_TIMEOUT_S + 1.0) + 2.0
#: A balancer's check times out after 1 s; /readyz waits 0.5 s for a silent store.
READYZ_BOUND_S = 1.5


@pytest.mark.timeout(120)
def test_postgres_stopped_for_10s_loses_nothing_and_intake_goes_on(bench, fault_postgres):
    with bench() as b:
        b.load_for(PRE_S)
        stopped_at = time.monotonic()
        fault_postgres.stop()
        try:
            b.load_for(STOPPED_S)
        finally:
            fault_postgres.start()
        healed_at = time.monotonic()
        b.load_for(POST_S)
        outcome = b.finish("3 PostgreSQL stopped 10 s", healed_at=healed_at)
        during = b.load.statuses(stopped_at + 1.0, healed_at)

    outcome.assert_clean()  # nothing lost, and nothing dead-lettered (misfiled = 0)
    assert during[202] > STOPPED_S * 100, f"intake stopped with the store: {during}"


@pytest.mark.timeout(150)
def test_postgres_frozen_for_30s_times_out_fills_the_queue_to_its_bound_then_drains(
    bench, fault_postgres
):
    settings = {
        "max_queue_depth": str(MAX_QUEUE_DEPTH),
        "store_timeout_s": str(STORE_TIMEOUT_S),
        # Longer than a store call can take, so a batch whose worker waits on the
        # frozen store is not handed to the other worker meanwhile.
        "visibility_timeout_s": "10",
    }
    with bench(**settings) as b:
        b.load_for(PRE_S)
        frozen_at = time.monotonic()
        fault_postgres.freeze()
        try:
            # The queue fills (the workers cannot store), then the API says 503.
            b.load.wait_for(503, since=frozen_at, problem="queue-full", timeout_s=20)
            # Nothing hangs: what needs the store fails within its timeout.
            started = time.monotonic()
            ready = httpx.get(b.cluster.urls[0] + "/readyz", timeout=30)
            readyz_s = time.monotonic() - started
            time.sleep(max(0.0, frozen_at + FROZEN_S - time.monotonic()))
        finally:
            fault_postgres.thaw()
        healed_at = time.monotonic()
        b.load_for(POST_S)
        outcome = b.finish("9 PostgreSQL frozen (SIGSTOP) 30 s", healed_at=healed_at)
        answers = [a for a in b.load.answers if frozen_at <= a.sent_at < healed_at]
        deepest = b.monitor.max_depth(frozen_at, healed_at)

    outcome.assert_clean()
    # Intake goes on, so the API stays ready; the body says processing waits for the store.
    assert ready.status_code == 200 and ready.json()["processing"] == "degraded", ready.text
    assert readyz_s < READYZ_BOUND_S, readyz_s
    slowest = max(a.latency_s for a in answers)
    assert slowest < ANSWER_BOUND_S, f"an answer took {slowest:.1f}s while the store was frozen"
    assert all(a.status in (202, 503) for a in answers), {a.status for a in answers}
    # Sampled depth (every 0.25 s per API process) lets it overshoot by a fraction.
    assert MAX_QUEUE_DEPTH <= deepest < MAX_QUEUE_DEPTH * 1.5, deepest
