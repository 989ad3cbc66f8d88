"""RedisStreamsBroker against a real, throwaway redis-server (AOF, appendfsync always).

The contract behaviours first, then what only Redis can do to us: crash,
restart, fill up, freeze, lose its script cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import msgspec
import pytest
import redis

from loanflow.backends.redis import keys
from loanflow.backends.redis.broker import RedisStreamsBroker
from loanflow.broker.base import IDEMPOTENCY_TTL_S, AppendOutcome, AppendResult, Submission
from loanflow.errors import BrokerUnavailable
from loanflow.models import AttemptRecord, Envelope, new_application_id
from tests.throwaway.redis import RedisServer, redis_server_fixture

T = TypeVar("T")

redis_server = redis_server_fixture()
#: One per test that stops, kills, freezes or fills its Redis.
own_redis = redis_server_fixture(scope="function")
small_redis = redis_server_fixture(scope="function", extra_args=("--maxmemory", "2mb"))
locked_redis = redis_server_fixture(scope="function", password="s3cret-pw")

LONG_VISIBILITY_S = 30.0
SHORT_VISIBILITY_S = 0.05
WAIT_LIMIT_S = 5.0
HOUR_NS = 3600 * 1_000_000_000


@pytest.fixture
def url(redis_server: RedisServer) -> str:
    redis_server.flushall()
    return redis_server.url


@pytest.fixture
def raw(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A plain client for looking at what the broker wrote."""
    with redis_server.client() as client:
        yield client


@contextlib.asynccontextmanager
async def opened(
    url: str, *, visibility_timeout_s: float = LONG_VISIBILITY_S, **options: Any
) -> AsyncIterator[RedisStreamsBroker]:
    broker = RedisStreamsBroker.from_url(url, visibility_timeout_s=visibility_timeout_s, **options)
    await broker.open()
    try:
        yield broker
    finally:
        await broker.close()


def scenario(
    url: str, body: Callable[[RedisStreamsBroker], Awaitable[T]], **options: Any
) -> T:
    """Run `body` with a broker opened on `url`, in one event loop."""

    async def main() -> T:
        async with opened(url, **options) as broker:
            return await body(broker)

    return asyncio.run(main())


def submission(
    key: str = "idem-1", *, fingerprint: str = "fp-1", api_key_id: str = "key-a"
) -> Submission:
    now_ns = time.time_ns()
    envelope = Envelope(
        id=new_application_id(now_ns), received_at_ns=now_ns, api_key_id=api_key_id,
        idempotency_key=key, channel="web", sealed_application=b"sealed:" + key.encode(),
    )
    return Submission(envelope, fingerprint)


async def reserve_within(broker: RedisStreamsBroker, consumer: str) -> list[Any]:
    deadline = time.monotonic() + WAIT_LIMIT_S
    while time.monotonic() < deadline:
        if deliveries := await broker.reserve(10, consumer=consumer):
            return deliveries
        await asyncio.sleep(0.01)
    raise AssertionError(f"nothing was handed out within {WAIT_LIMIT_S}s")


# -- append and idempotency ---------------------------------------------------------


def test_append_accepts_a_new_envelope_and_makes_it_reservable(url: str) -> None:
    sub = submission()

    async def body(broker: RedisStreamsBroker) -> None:
        assert await broker.append([sub]) == [
            AppendResult(AppendOutcome.ACCEPTED, sub.envelope.id, sub.envelope.received_at_ns)
        ]
        [delivery] = await broker.reserve(10, consumer="c1")
        assert (delivery.envelope, delivery.deliveries) == (sub.envelope, 1)

    scenario(url, body)


def test_same_key_same_body_replays_the_original_answer(url: str) -> None:
    first, retry = submission(), submission()

    async def body(broker: RedisStreamsBroker) -> None:
        await broker.append([first])
        [result] = await broker.append([retry])
        assert result == AppendResult(
            AppendOutcome.REPLAYED, first.envelope.id, first.envelope.received_at_ns
        )
        assert await broker.depth() == 1

    scenario(url, body)


def test_same_key_other_body_is_refused_and_enqueues_nothing(url: str) -> None:
    first = submission()

    async def body(broker: RedisStreamsBroker) -> None:
        await broker.append([first])
        [result] = await broker.append([submission(fingerprint="fp-other")])
        assert (result.outcome, result.application_id) == (
            AppendOutcome.KEY_REUSED, first.envelope.id
        )
        assert await broker.depth() == 1

    scenario(url, body)


def test_keys_are_scoped_by_api_key(url: str) -> None:
    mine = submission(api_key_id="key-a")
    theirs = submission(api_key_id="key-b", fingerprint="fp-other")
    # "a:b" + "c" and "a" + "b:c" must not collide either.
    colon_1 = submission("c", api_key_id="a:b")
    colon_2 = submission("b:c", api_key_id="a", fingerprint="fp-other")

    async def body(broker: RedisStreamsBroker) -> None:
        results = await broker.append([mine, theirs, colon_1, colon_2])
        assert {r.outcome for r in results} == {AppendOutcome.ACCEPTED}
        assert await broker.depth() == 4

    scenario(url, body)


def test_a_key_repeated_within_one_append_is_accepted_once(url: str) -> None:
    subs = [submission(), submission()]

    async def body(broker: RedisStreamsBroker) -> None:
        first, second = await broker.append(subs)
        assert (first.outcome, second.outcome) == (AppendOutcome.ACCEPTED, AppendOutcome.REPLAYED)
        assert second.application_id == first.application_id

    scenario(url, body)


def test_200_concurrent_appends_of_20_keys_accept_each_key_once(url: str) -> None:
    subs = [submission(f"idem-{i % 20}", fingerprint=f"fp-{i % 20}") for i in range(200)]

    async def body(broker: RedisStreamsBroker) -> None:
        answers = await asyncio.gather(*(broker.append([s]) for s in subs))
        results = [result for [result] in answers]
        assert sum(r.outcome is AppendOutcome.ACCEPTED for r in results) == 20
        assert {r.outcome for r in results} <= {AppendOutcome.ACCEPTED, AppendOutcome.REPLAYED}
        winners: dict[str, str] = {}
        for sub, result in zip(subs, results, strict=True):
            key = sub.envelope.idempotency_key
            assert winners.setdefault(key, result.application_id) == result.application_id
        assert await broker.depth() == 20

    scenario(url, body)


def test_idempotency_key_is_kept_for_the_default_window_by_a_redis_ttl(
    url: str, raw: redis.Redis
) -> None:
    sub = submission()
    scenario(url, lambda broker: broker.append([sub]))

    ttl_s = raw.ttl(keys.idempotency_key("key-a", "idem-1"))

    assert IDEMPOTENCY_TTL_S == 24 * 3600
    assert IDEMPOTENCY_TTL_S - 60 < ttl_s <= IDEMPOTENCY_TTL_S


def test_idempotency_window_is_a_setting(url: str, raw: redis.Redis) -> None:
    sub = submission()
    scenario(url, lambda broker: broker.append([sub]), idempotency_window_s=600)

    assert 540 < raw.ttl(keys.idempotency_key("key-a", "idem-1")) <= 600


def test_idempotency_record_is_one_compact_string(url: str, raw: redis.Redis) -> None:
    sub = submission()
    scenario(url, lambda broker: broker.append([sub]))

    key = keys.idempotency_key("key-a", "idem-1")
    # 16-byte fingerprint, 8-byte time, 16-byte id: Redis's one-allocation string.
    assert raw.type(key) == b"string"
    assert len(raw.get(key)) == 40
    assert raw.object("encoding", key) == b"embstr"


def test_a_key_claimed_in_the_earlier_hash_format_still_replays(
    url: str, raw: redis.Redis
) -> None:
    # Given a key claimed by a version that wrote a hash (before the upgrade),
    first = submission()
    key = keys.idempotency_key("key-a", "idem-1")
    raw.hset(key, mapping={"fp": "fp-1", "id": first.envelope.id,
                           "at": first.envelope.received_at_ns})
    raw.expire(key, 72 * 3600)

    async def body(broker: RedisStreamsBroker) -> None:
        # the same body answers the original 202 and another body is refused,
        [same, other] = [r for [r] in [await broker.append([submission()]),
                                       await broker.append([submission(fingerprint="fp-2")])]]
        assert same == AppendResult(AppendOutcome.REPLAYED, first.envelope.id,
                                    first.envelope.received_at_ns)
        assert (other.outcome, other.application_id) == (AppendOutcome.KEY_REUSED,
                                                         first.envelope.id)
        # nothing is enqueued, and the old record is left to its own TTL.
        assert await broker.depth() == 0
        assert raw.type(key) == b"hash"
        # The sweep of a given clock reads it too.
        received = first.envelope.received_at_ns
        assert await broker.expire_idempotency_keys(received + IDEMPOTENCY_TTL_S * 10**9
                                                    + HOUR_NS) == 1

    scenario(url, body)


def test_expiry_is_left_to_redis_in_real_time_and_sweeps_by_age_for_a_given_clock(
    url: str,
) -> None:
    sub = submission()
    window_ns = IDEMPOTENCY_TTL_S * 1_000_000_000

    async def body(broker: RedisStreamsBroker) -> None:
        await broker.append([sub])
        received = sub.envelope.received_at_ns
        assert await broker.expire_idempotency_keys() == 0
        assert await broker.expire_idempotency_keys(received + window_ns - HOUR_NS) == 0
        # One ns either side of the cutoff: the record's time is compared exactly.
        assert await broker.expire_idempotency_keys(received + window_ns) == 0
        assert await broker.expire_idempotency_keys(received + window_ns + 1) == 1
        [again] = await broker.append([submission(fingerprint="fp-other")])
        assert again.outcome is AppendOutcome.ACCEPTED

    scenario(url, body)


# -- reserve, visibility, ack, retry, release -------------------------------------------


def test_two_consumers_never_hold_the_same_envelope(url: str) -> None:
    subs = [submission(f"idem-{i}") for i in range(50)]

    async def body(broker: RedisStreamsBroker) -> None:
        await broker.append(subs)
        batches = await asyncio.gather(
            *(broker.reserve(10, consumer=f"c{i % 2}") for i in range(8))
        )
        ids = [d.envelope.id for batch in batches for d in batch]
        assert len(ids) == len(set(ids)) == 50

    scenario(url, body)


def test_reserve_hands_out_oldest_first_and_at_most_max_count(url: str) -> None:
    subs = [submission(f"idem-{i}") for i in range(5)]

    async def body(broker: RedisStreamsBroker) -> None:
        await broker.append(subs)
        deliveries = await broker.reserve(3, consumer="c1")
        assert [d.envelope.id for d in deliveries] == [s.envelope.id for s in subs[:3]]

    scenario(url, body)


def test_unacked_envelope_is_redelivered_after_the_lease_with_deliveries_counted(
    url: str,
) -> None:
    async def body(broker: RedisStreamsBroker) -> None:
        await broker.append([submission()])
        [first] = await broker.reserve(10, consumer="crashed")
        assert await broker.reserve(10, consumer="c2") == []
        [again] = await reserve_within(broker, "c2")
        assert again.envelope == first.envelope
        assert (first.deliveries, again.deliveries) == (1, 2)

    scenario(url, body, visibility_timeout_s=SHORT_VISIBILITY_S)


def test_ack_deletes_the_entry_so_the_stream_holds_only_unacked_work(
    url: str, raw: redis.Redis
) -> None:
    sub = submission()

    async def body(broker: RedisStreamsBroker) -> None:
        await broker.append([sub, submission("idem-2")])
        [delivery, _] = await broker.reserve(10, consumer="c1")
        await broker.ack([delivery])
        assert await broker.pending_state(sub.envelope.id) is None
        await asyncio.sleep(SHORT_VISIBILITY_S * 2)
        assert await broker.reserve(10, consumer="c2") == []

    scenario(url, body, visibility_timeout_s=SHORT_VISIBILITY_S * 20)

    assert raw.xlen(keys.STREAM) == 1
    assert raw.xpending(keys.STREAM, keys.GROUP)["pending"] == 1
    assert not raw.exists(keys.application_key(sub.envelope.id))


def test_retry_later_hides_the_envelope_then_hands_out_the_update(url: str) -> None:
    failed = AttemptRecord(attempt=1, at_ns=time.time_ns(), error_code="Boom", message="boom")

    async def body(broker: RedisStreamsBroker) -> None:
        await broker.append([submission()])
        [delivery] = await broker.reserve(10, consumer="c1")
        updated = msgspec.structs.replace(delivery.envelope, attempts=(failed,))
        await broker.retry_later(delivery, updated, 0.2)
        assert await broker.reserve(10, consumer="c2") == []
        assert await broker.depth() == 1
        [again] = await reserve_within(broker, "c2")
        assert (again.envelope, again.deliveries) == (updated, 2)

    scenario(url, body)


def test_release_hands_back_without_counting_a_delivery(url: str) -> None:
    async def body(broker: RedisStreamsBroker) -> None:
        await broker.append([submission()])
        [delivery] = await broker.reserve(10, consumer="c1")
        await broker.release([delivery], 0)
        [again] = await broker.reserve(10, consumer="c2")
        assert (again.envelope, again.deliveries) == (delivery.envelope, 1)

    scenario(url, body)


def test_a_holder_whose_lease_ran_out_cannot_hand_back_what_another_holds(url: str) -> None:
    async def body(broker: RedisStreamsBroker) -> None:
        await broker.append([submission()])
        [stale] = await broker.reserve(10, consumer="a")
        [current] = await reserve_within(broker, "b")
        await broker.release([stale], 0)
        await broker.retry_later(stale, stale.envelope, 0)
        assert await broker.reserve(10, consumer="c") == []
        assert await broker.pending_state(current.envelope.id) == (
            "processing", current.envelope.received_at_ns
        )

    scenario(url, body, visibility_timeout_s=0.2)


def test_pending_state_follows_queued_processing_then_none(url: str) -> None:
    sub = submission()
    expected_at = sub.envelope.received_at_ns

    async def body(broker: RedisStreamsBroker) -> None:
        assert await broker.pending_state(sub.envelope.id) is None
        await broker.append([sub])
        assert await broker.pending_state(sub.envelope.id) == ("queued", expected_at)
        [delivery] = await broker.reserve(10, consumer="c1")
        assert await broker.pending_state(sub.envelope.id) == ("processing", expected_at)
        await broker.retry_later(delivery, delivery.envelope, 60)
        assert await broker.pending_state(sub.envelope.id) == ("queued", expected_at)

    scenario(url, body)


def test_depth_counts_ready_delayed_and_held_envelopes(url: str) -> None:
    async def body(broker: RedisStreamsBroker) -> None:
        await broker.append([submission(f"idem-{i}") for i in range(3)])
        [_held, delayed] = await broker.reserve(2, consumer="c1")
        await broker.retry_later(delayed, delayed.envelope, 60)
        assert await broker.depth() == 3

    scenario(url, body)


def test_one_broker_serves_successive_event_loops(url: str) -> None:
    # As the contract suite uses it: open, each call and close in its own asyncio.run().
    broker = RedisStreamsBroker.from_url(url, visibility_timeout_s=LONG_VISIBILITY_S)
    asyncio.run(broker.open())
    asyncio.run(broker.append([submission()]))
    [delivery] = asyncio.run(broker.reserve(10, consumer="c1"))
    asyncio.run(broker.ack([delivery]))
    assert asyncio.run(broker.depth()) == 0
    asyncio.run(broker.close())


# -- what Redis can do to us ----------------------------------------------------------


def test_accepted_work_survives_sigkill_and_restart_on_the_same_aof(own_redis: RedisServer) -> None:
    subs = [submission(f"idem-{i}") for i in range(50)]

    async def body(broker: RedisStreamsBroker) -> None:
        await broker.append(subs)
        [held] = await broker.reserve(1, consumer="crashed")
        own_redis.kill()  # no shutdown code runs
        own_redis.start()
        # The same broker carries on: dropped connections are remade, scripts reloaded.
        assert await broker.depth() == 50
        [replay] = await broker.append([submission("idem-0")])
        assert (replay.outcome, replay.application_id) == (AppendOutcome.REPLAYED, held.envelope.id)
        fresh = await broker.reserve(100, consumer="c2")
        assert len(fresh) == 49
        await broker.ack(fresh)  # else their leases may run out with the crashed one's
        [again] = await reserve_within(broker, "c2")
        assert (again.envelope, again.deliveries) == (held.envelope, 2)

    scenario(own_redis.url, body, visibility_timeout_s=0.2)


def test_every_call_raises_broker_unavailable_while_redis_is_down(own_redis: RedisServer) -> None:
    async def body(broker: RedisStreamsBroker) -> None:
        own_redis.stop()
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: broker.append([submission()]),
            lambda: broker.reserve(10, consumer="c1"),
            broker.depth,
            broker.ping,
            lambda: broker.pending_state("x"),
        ]
        for call in calls:
            with pytest.raises(BrokerUnavailable):
                await call()
        own_redis.start()
        [result] = await broker.append([submission()])
        assert result.outcome is AppendOutcome.ACCEPTED

    scenario(own_redis.url, body)


def fill(client: redis.Redis) -> None:
    """Write fillers until Redis refuses, in ever smaller pieces, so it ends up full to the brim."""
    for size in (65536, 4096, 256):
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            for i in range(1000):
                client.set(f"filler:{size}:{i}", b"x" * size)


def test_a_full_redis_refuses_appends_but_lets_processors_drain(small_redis: RedisServer) -> None:
    async def body(broker: RedisStreamsBroker) -> None:
        await broker.append([submission("a"), submission("b")])
        first, second = await broker.reserve(10, consumer="c1")
        with small_redis.client() as client:
            fill(client)
            # Given a full Redis, appends go through only while it is under the limit,
            for i in range(100):
                try:
                    [result] = await broker.append([submission(f"more-{i}")])
                except BrokerUnavailable as exc:
                    assert "OutOfMemoryError" in str(exc)
                    refused = f"more-{i}"
                    break
                assert result.outcome is AppendOutcome.ACCEPTED
            else:
                raise AssertionError("a full Redis kept accepting appends")
            # and the refused one leaves no trace: its key stays free for the retry.
            assert not client.exists(keys.idempotency_key("key-a", refused))
            held = await broker.depth()
            # Processors still ack, release and reserve, so the backlog drains.
            await broker.ack([first])
            await broker.release([second], 0)
            while deliveries := await broker.reserve(100, consumer="c2"):
                await broker.ack(deliveries)
            assert (held, await broker.depth()) == (2 + i, 0)
            client.delete(*client.keys("filler:*"))
        [result] = await broker.append([submission(refused)])
        assert result.outcome is AppendOutcome.ACCEPTED

    scenario(small_redis.url, body)


def test_a_frozen_redis_times_out_and_the_retry_never_duplicates(own_redis: RedisServer) -> None:
    async def body(broker: RedisStreamsBroker) -> None:
        own_redis.freeze()
        started = time.monotonic()
        try:
            with pytest.raises(BrokerUnavailable, match="Timeout"):
                await broker.append([submission()])
        finally:
            own_redis.thaw()
        assert time.monotonic() - started < 2.0
        # The client heard nothing, so it retries with the same key: one application.
        [result] = await broker.append([submission()])
        assert result.outcome in (AppendOutcome.ACCEPTED, AppendOutcome.REPLAYED)
        assert await broker.depth() == 1

    scenario(own_redis.url, body, socket_timeout_s=0.3)


def test_scripts_lost_from_the_cache_are_loaded_again(url: str, raw: redis.Redis) -> None:
    async def body(broker: RedisStreamsBroker) -> None:
        raw.script_flush()
        [result] = await broker.append([submission()])
        assert result.outcome is AppendOutcome.ACCEPTED

    scenario(url, body)


def test_reserve_remakes_the_group_when_the_stream_was_made_anew(
    url: str, raw: redis.Redis
) -> None:
    async def body(broker: RedisStreamsBroker) -> None:
        raw.delete(keys.STREAM)
        await broker.append([submission()])
        assert len(await broker.reserve(10, consumer="c1")) == 1

    scenario(url, body)


def test_the_password_never_shows_in_repr_or_errors(locked_redis: RedisServer) -> None:
    async def body(broker: RedisStreamsBroker) -> str:
        await broker.append([submission()])
        locked_redis.stop()
        with pytest.raises(BrokerUnavailable) as caught:
            await broker.append([submission("idem-2")])
        return f"{broker!r} {caught.value} {caught.value.__cause__!r}"

    shown = scenario(locked_redis.url, body)

    assert "s3cret-pw" in locked_redis.url
    assert "s3cret-pw" not in shown


def test_polling_an_empty_queue_writes_nothing_to_the_aof(url: str, raw: redis.Redis) -> None:
    async def body(broker: RedisStreamsBroker) -> None:
        await broker.append([submission()])
        [delivery] = await broker.reserve(10, consumer="c1")
        await broker.ack([delivery])
        before = raw.info("persistence")["aof_current_size"]
        for _ in range(20):
            assert await broker.reserve(10, consumer="c1") == []
        assert raw.info("persistence")["aof_current_size"] == before

    scenario(url, body)


# -- an idle consumer ---------------------------------------------------------------


def test_an_idle_consumer_wakes_as_soon_as_work_is_appended(url: str) -> None:
    async def body(broker: RedisStreamsBroker) -> tuple[float, str]:
        assert await broker.reserve(10, consumer="c1") == []
        waiting = asyncio.create_task(broker.wait_for_work("c1"))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        appended = time.monotonic()
        sub = submission()
        await broker.append([sub])
        await waiting
        woke_after_s = time.monotonic() - appended
        [delivery] = await broker.reserve(10, consumer="c1")
        return woke_after_s, delivery.envelope.id

    woke_after_s, taken = scenario(url, body, idle_block_s=3.0)
    assert woke_after_s < 1.0  # not the 3 s bound
    assert taken


def test_work_appended_between_an_empty_reserve_and_the_wait_is_not_missed(url: str) -> None:
    async def body(broker: RedisStreamsBroker) -> float:
        assert await broker.reserve(10, consumer="c1") == []
        await broker.append([submission()])
        started = time.monotonic()
        await broker.wait_for_work("c1")
        return time.monotonic() - started

    assert scenario(url, body, idle_block_s=3.0) < 1.0


def test_with_nothing_appended_an_idle_consumer_looks_again_after_its_bound(
    url: str,
) -> None:
    """Due retries and expired leases are only found by looking."""
    async def body(broker: RedisStreamsBroker) -> tuple[float, int]:
        await broker.append([submission()])
        [held] = await broker.reserve(10, consumer="c1")
        await broker.retry_later(held, held.envelope, delay_s=0.2)
        assert await broker.reserve(10, consumer="c1") == []
        started = time.monotonic()
        await broker.wait_for_work("c1")
        waited_s = time.monotonic() - started
        await asyncio.sleep(0.2)  # the retry is due by now
        return waited_s, len(await broker.reserve(10, consumer="c1"))

    waited_s, retried = scenario(url, body, idle_block_s=0.5, idle_after_s=0)
    assert 0.4 <= waited_s < 2.0
    assert retried == 1


def test_a_consumer_that_just_took_work_looks_again_after_a_short_pause(url: str) -> None:
    """While work flows it polls, so the next batch gathers instead of one per append."""
    async def body(broker: RedisStreamsBroker) -> float:
        await broker.append([submission()])
        await reserve_within(broker, "c1")
        assert await broker.reserve(10, consumer="c1") == []
        started = time.monotonic()
        await broker.wait_for_work("c1")
        return time.monotonic() - started

    assert scenario(url, body, idle_block_s=3.0) < 0.5
