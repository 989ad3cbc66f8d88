"""Faults 4 and 10: the broker goes away, or is full.

The throwaway Redis runs as the README asks production to: AOF with
`appendfsync always` and `maxmemory-policy noeviction`. So a 202 means the
application and its idempotency key were written to the AOF and fsync'd
before Redis answered the append; a Redis that cannot take a write makes the
API answer 503, never a 202.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest
import uvloop

from loanflow.backends.redis.broker import RedisStreamsBroker
from loanflow.backends.redis.ratelimit import RedisTokenBucketLimiter
from loanflow.errors import BrokerUnavailable
from tests.conftest import api_key

pytestmark = pytest.mark.faults

PRE_S = 2.0
POST_S = 2.0
DOWN_S = 3.0
FULL_S = 3.0


@pytest.mark.timeout(90)
def test_redis_killed_and_restarted_on_its_aof_loses_nothing(bench, fault_redis):
    with bench() as b:
        b.load_for(PRE_S)
        down_at = time.monotonic()
        fault_redis.kill()  # SIGKILL: only what is in the AOF comes back
        try:
            b.load_for(DOWN_S)
        finally:
            # Before start(): it returns once Redis answers, and 202s may come by then.
            restarting_at = time.monotonic()
            fault_redis.start()
        healed_at = time.monotonic()
        b.load_for(POST_S)
        outcome = b.finish("4 Redis SIGKILL + restart (AOF always)", healed_at=healed_at)
        during = b.load.statuses(down_at + 0.5, restarting_at)

    outcome.assert_clean()
    assert during[503] + during[0] > 0 and during[202] == 0, during


@pytest.mark.timeout(90)
def test_redis_at_its_memory_limit_answers_503_evicts_nothing_and_resumes(bench, fault_redis):
    # No rate limiter, so the durable append itself meets the full Redis (the
    # limiter's own write would be refused first and hide it).
    with bench(rate_limit_per_s="0") as b:
        b.load_for(PRE_S)
        with fault_redis.client() as r:
            used = int(r.info("memory")["used_memory"])
            r.config_set("maxmemory", used // 2)
        limited_at = time.monotonic()
        b.load.wait_for(503, since=limited_at, problem="broker-unavailable", timeout_s=10)
        b.load_for(FULL_S)
        raising_at = time.monotonic()  # before: once raised, new 202s are right again
        with fault_redis.client() as r:
            r.config_set("maxmemory", 0)
        healed_at = time.monotonic()
        b.load_for(POST_S)
        outcome = b.finish("10 Redis at maxmemory (noeviction)", healed_at=healed_at)
        new_while_full = [a for a in b.load.answers if a.status == 202 and not a.replayed
                          and a.sent_at >= limited_at and a.answered_at < raising_at]
        with fault_redis.client() as r:
            evicted = int(r.info("stats")["evicted_keys"])

    outcome.assert_clean()
    assert new_while_full == [], f"{len(new_while_full)} new applications accepted while full"
    assert evicted == 0


@pytest.fixture
def resetting_server() -> Iterator[str]:
    """A redis:// URL whose server resets every connection as soon as it is accepted,
    as a Redis being killed does to the connections it just took."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)

    def accept_and_reset() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed: the test is over
            # Linger 0: close() sends a RST, not a FIN.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    threading.Thread(target=accept_and_reset, daemon=True).start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        listener.close()


@pytest.mark.timeout(60)
def test_connections_reset_as_redis_dies_are_503s_not_500s(resetting_server):
    # Found by the Redis kill: under uvloop (as the API runs) redis-py raised
    # RuntimeError("... the handler is closed") for a connection reset between its
    # connect and first write, and the API answered 500. A few calls in a
    # thousand hit that window, so many are made, concurrently, in several rounds.
    async def round_of_calls() -> list[BaseException | None]:
        limiter = RedisTokenBucketLimiter.from_url(resetting_server, rate_per_s=10, burst=10)
        await limiter.open()
        try:
            checks = [limiter.acquire(api_key("k")) for _ in range(300)]
            brokers = [RedisStreamsBroker.from_url(resetting_server, visibility_timeout_s=1)
                       for _ in range(300)]
            return await asyncio.gather(*checks, *(b.open() for b in brokers),
                                        return_exceptions=True)
        finally:
            await limiter.close()

    for _ in range(8):
        outcomes = uvloop.run(round_of_calls())
        assert all(isinstance(o, BrokerUnavailable) for o in outcomes), {
            repr(o)[:120] for o in outcomes if not isinstance(o, BrokerUnavailable)}
