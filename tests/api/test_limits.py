"""Limits: per-key rate (429) and queue depth (503), both refusing without storing."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from pathlib import Path

import httpx
import pytest

from loanflow.broker.ratelimit import TokenBucketLimiter
from loanflow.errors import RateLimited
from tests.api.test_submit import submit
from tests.conftest import (
    Deployment,
    ServerProcess,
    api_key,
    create_key,
    production_deployment,
    sample_application,
)


def take(limiter: TokenBucketLimiter, key_id: str) -> None:
    asyncio.run(limiter.acquire(api_key(key_id)))


def test_bucket_allows_the_burst_then_the_rate():
    now = [0.0]
    limiter = TokenBucketLimiter(rate_per_s=10, burst=5, clock_s=lambda: now[0])

    for _ in range(5):
        take(limiter, "k")
    with pytest.raises(RateLimited) as refused:
        take(limiter, "k")
    now[0] += 0.1
    take(limiter, "k")

    assert refused.value.retry_after_s == 1


def test_buckets_are_per_key():
    limiter = TokenBucketLimiter(rate_per_s=1, burst=1, clock_s=lambda: 0.0)

    take(limiter, "a")
    take(limiter, "b")

    with pytest.raises(RateLimited):
        take(limiter, "a")


def test_a_key_s_own_limit_is_shared_by_the_host_s_api_processes():
    # Each of two processes takes half of the key's rate and burst: together, the key's.
    limiter = TokenBucketLimiter(rate_per_s=1000, burst=1000, processes=2, clock_s=lambda: 0.0)
    key = api_key("k", rate_per_s=1, burst=4)

    for _ in range(2):
        asyncio.run(limiter.acquire(key))
    with pytest.raises(RateLimited) as refused:
        asyncio.run(limiter.acquire(key))

    assert "over 1/s" in str(refused.value)


def test_a_key_with_a_rate_of_zero_is_not_limited():
    limiter = TokenBucketLimiter(rate_per_s=1, burst=1, clock_s=lambda: 0.0)

    for _ in range(100):
        asyncio.run(limiter.acquire(api_key("k", rate_per_s=0)))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["embedded", "production with 2 API processes"])
def test_over_the_rate_is_429_and_accepted_count_matches_the_rate(tmp_path, mode):
    # A rate a sequential client beats many times over even on a busy machine: the
    # test is about the count the bucket lets through, not about the client's speed.
    rate, burst, duration_s = 30, 10, 2.0
    with contextlib.ExitStack() as stack:
        where: Path | Deployment = tmp_path
        extra = {}
        if mode != "embedded":
            # Two API processes share one bucket in Redis: the sum is the configured rate.
            where = stack.enter_context(production_deployment(tmp_path))
            extra = {"api_workers": "2", "processors": "1"}
        sent = hammer(where, rate, burst, duration_s, extra)
    statuses = [status for _, status in sent]
    # What an ideal bucket lets through at the client's own send times: a stalled client
    # (a cold server, a busy machine) loses the refill beyond the burst, as it should.
    expected = ideal_bucket_admits([at for at, _ in sent], rate, burst)
    assert set(statuses) == {202, 429}
    # The client's own clock brackets the server's by a little: allow 10%.
    assert abs(statuses.count(202) - expected) <= 0.1 * expected, (statuses.count(202), expected)


def ideal_bucket_admits(times_s: list[float], rate: float, burst: int) -> int:
    tokens, last, admitted = float(burst), times_s[0], 0
    for at in times_s:
        tokens = min(burst, tokens + (at - last) * rate)
        last = at
        if tokens >= 1:
            tokens -= 1
            admitted += 1
    return admitted


def hammer(where: Path | Deployment, rate: int, burst: int, duration_s: float,
           extra: dict[str, str]) -> list[tuple[float, int]]:
    """(send time, status) of every request, sent one after another for `duration_s`."""
    key = create_key(where, "submit")
    server = ServerProcess(where, rate_limit_per_s=str(rate), rate_limit_burst=str(burst),
                           **extra)
    server.start()
    sent: list[tuple[float, int]] = []
    try:
        # Several connections, so that with 2 API processes both take requests.
        with contextlib.ExitStack() as stack:
            clients = [stack.enter_context(httpx.Client(base_url=server.url, timeout=10))
                       for _ in range(4)]
            started = time.monotonic()
            while time.monotonic() - started < duration_s and len(sent) < 20_000:
                at = time.monotonic()
                answer = submit(clients[len(sent) % 4], key, sample_application())
                sent.append((at, answer.status_code))
                if answer.status_code == 429:
                    assert int(answer.headers["retry-after"]) >= 1
                    assert answer.json()["type"] == "/problems/rate-limited"
    finally:
        server.stop()
    return sent


@pytest.mark.slow
def test_queue_over_its_depth_is_503_and_nothing_is_stored(tmp_path):
    key = create_key(tmp_path, "submit")
    server = ServerProcess(tmp_path, processors="0", max_queue_depth="5").start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            accepted = [submit(client, key, sample_application()) for _ in range(5)]
            refused_key = str(uuid.uuid4())
            refused = submit(client, key, sample_application(), idem=refused_key)
    finally:
        server.stop()

    assert [a.status_code for a in accepted] == [202] * 5
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["type"] == "/problems/queue-full"
    with sqlite3.connect(tmp_path / "broker.db") as db:
        assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 5
        assert db.execute("SELECT count(*) FROM idempotency_keys WHERE key = ?",
                          (refused_key,)).fetchone()[0] == 0
