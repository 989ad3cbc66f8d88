"""The broker contract (broker/base.py), one suite for every backend.

A new backend joins by adding its name to BACKENDS and a branch to
`BrokerFactory._build` that starts from an empty broker (dramatiq style).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from loanflow.backends.redis.broker import RedisStreamsBroker
from loanflow.backends.sqlite.broker import SQLiteBroker
from loanflow.broker.base import (
    IDEMPOTENCY_TTL_S,
    AppendOutcome,
    AppendResult,
    Broker,
    Delivery,
    RateLimit,
    Submission,
)
from loanflow.models import AttemptRecord, Envelope, new_application_id
from tests.throwaway.redis import RedisServer, redis_server_fixture

BACKENDS = ["sqlite", "redis"]

redis_server = redis_server_fixture()

#: Long enough that a lease never runs out during a test that does not want it to.
LONG_VISIBILITY_S = 30.0
#: Short enough that a test can watch a lease run out.
SHORT_VISIBILITY_S = 0.05
#: Upper bound on any wait for something the broker must do on its own.
WAIT_LIMIT_S = 5.0

HOUR_NS = 3600 * 1_000_000_000


class BrokerFactory:
    """Opens brokers of one backend over the same place; closes them all at the end."""

    def __init__(self, backend: str, tmp_path: Path, redis_url: str = "") -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.redis_url = redis_url
        self._opened: list[Broker] = []

    def __call__(
        self, *, visibility_timeout_s: float = LONG_VISIBILITY_S,
        idempotency_window_s: int = IDEMPOTENCY_TTL_S,
    ) -> Broker:
        broker = self._build(visibility_timeout_s, idempotency_window_s)
        asyncio.run(broker.open())
        self._opened.append(broker)
        return broker

    def _build(self, visibility_timeout_s: float, idempotency_window_s: int) -> Broker:
        if self.backend == "sqlite":
            return SQLiteBroker(
                self.tmp_path / "broker.db", visibility_timeout_s=visibility_timeout_s,
                idempotency_window_s=idempotency_window_s,
            )
        if self.backend == "redis":
            return RedisStreamsBroker.from_url(
                self.redis_url, visibility_timeout_s=visibility_timeout_s,
                idempotency_window_s=idempotency_window_s,
            )
        raise AssertionError(f"expected a backend among {BACKENDS}, got {self.backend!r}")

    def close(self, broker: Broker) -> None:
        asyncio.run(broker.close())
        self._opened.remove(broker)

    def close_all(self) -> None:
        for broker in list(self._opened):
            self.close(broker)


@pytest.fixture(params=BACKENDS)
def broker_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerFactory]:
    redis_url = ""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.flushall()
        redis_url = server.url
    factory = BrokerFactory(request.param, tmp_path, redis_url)
    yield factory
    factory.close_all()


@pytest.fixture
def broker(broker_factory: BrokerFactory) -> Broker:
    return broker_factory()


def submission(
    key: str = "idem-1",
    *,
    fingerprint: str = "fp-1",
    api_key_id: str = "key-a",
    received_at_ns: int | None = None,
    key_id: bytes = b"seal",
) -> Submission:
    """`key_id`: the 4 bytes a sealed value starts with, the id of the key that sealed it."""
    now_ns = time.time_ns() if received_at_ns is None else received_at_ns
    envelope = Envelope(
        id=new_application_id(now_ns),
        received_at_ns=now_ns,
        api_key_id=api_key_id,
        idempotency_key=key,
        client_ip="192.0.2.1",
        channel="web",
        sealed_application=key_id + b"ed:" + key.encode(),
    )
    return Submission(envelope, fingerprint)


def append_one(broker: Broker, sub: Submission) -> AppendResult:
    [result] = asyncio.run(broker.append([sub]))
    return result


def reserve(broker: Broker, consumer: str = "c1", max_count: int = 10) -> list[Delivery]:
    return asyncio.run(broker.reserve(max_count, consumer=consumer))


def depth(broker: Broker) -> int:
    return asyncio.run(broker.depth())


def reserve_within(broker: Broker, consumer: str, timeout_s: float = WAIT_LIMIT_S) -> Delivery:
    """The first delivery the broker hands `consumer`, polling up to `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        deliveries = reserve(broker, consumer)
        if deliveries:
            [delivery] = deliveries
            return delivery
        time.sleep(0.01)
    raise AssertionError(f"nothing was handed out within {timeout_s}s")


# -- append and idempotency ---------------------------------------------------------


def test_append_accepts_a_new_envelope_and_makes_it_reservable(broker: Broker) -> None:
    sub = submission()

    result = append_one(broker, sub)

    assert result == AppendResult(
        AppendOutcome.ACCEPTED, sub.envelope.id, sub.envelope.received_at_ns
    )
    [delivery] = reserve(broker)
    assert delivery.envelope == sub.envelope
    assert delivery.deliveries == 1


def test_append_answers_in_order_one_result_per_submission(broker: Broker) -> None:
    subs = [submission(f"idem-{i}") for i in range(5)]

    results = asyncio.run(broker.append(subs))

    assert [r.application_id for r in results] == [s.envelope.id for s in subs]
    assert {r.outcome for r in results} == {AppendOutcome.ACCEPTED}


def test_replayed_key_returns_the_original_id_and_received_at(broker: Broker) -> None:
    first = submission("idem-1", fingerprint="fp-1")
    append_one(broker, first)
    retry = submission("idem-1", fingerprint="fp-1", received_at_ns=time.time_ns() + 1_000)

    result = append_one(broker, retry)

    assert result == AppendResult(
        AppendOutcome.REPLAYED, first.envelope.id, first.envelope.received_at_ns
    )
    assert depth(broker) == 1


def test_same_key_with_another_fingerprint_is_refused_and_enqueues_nothing(
    broker: Broker,
) -> None:
    first = submission("idem-1", fingerprint="fp-1")
    append_one(broker, first)

    result = append_one(broker, submission("idem-1", fingerprint="fp-other"))

    assert result.outcome is AppendOutcome.KEY_REUSED
    assert depth(broker) == 1
    [delivery] = reserve(broker)
    assert delivery.envelope == first.envelope


def test_same_idempotency_key_under_another_api_key_is_independent(broker: Broker) -> None:
    mine = submission("idem-1", api_key_id="key-a")
    theirs = submission("idem-1", api_key_id="key-b", fingerprint="fp-other")

    results = [append_one(broker, mine), append_one(broker, theirs)]

    assert [r.outcome for r in results] == [AppendOutcome.ACCEPTED, AppendOutcome.ACCEPTED]
    assert [r.application_id for r in results] == [mine.envelope.id, theirs.envelope.id]
    assert depth(broker) == 2


def test_concurrent_appends_of_the_same_keys_accept_each_key_once(broker: Broker) -> None:
    # Given 200 submissions racing for 20 keys (10 identical retries per key)
    subs = [submission(f"idem-{i % 20}", fingerprint=f"fp-{i % 20}") for i in range(200)]

    async def append_all() -> list[AppendResult]:
        answers = await asyncio.gather(*(broker.append([s]) for s in subs))
        return [result for [result] in answers]

    # When they are all appended at once
    results = asyncio.run(append_all())

    # Then each key is accepted once and every retry names the accepted application
    accepted = [r for r in results if r.outcome is AppendOutcome.ACCEPTED]
    assert len(accepted) == 20
    assert depth(broker) == 20
    winner = {}
    for sub, result in zip(subs, results, strict=True):
        winner.setdefault(sub.envelope.idempotency_key, result.application_id)
        assert result.application_id == winner[sub.envelope.idempotency_key]
        assert result.outcome in (AppendOutcome.ACCEPTED, AppendOutcome.REPLAYED)


# -- reserve, visibility, ack ---------------------------------------------------------


def test_a_submission_over_its_rate_limit_claims_nothing(broker: Broker) -> None:
    # A slow refill: the test is over long before the bucket holds a token again.
    limit = RateLimit("key-a", rate_per_s=0.01, burst=2)
    first, second, third = (
        dataclasses.replace(submission(f"idem-{i}"), rate_limit=limit) for i in range(3))

    results = asyncio.run(broker.append([first, second, third]))

    assert [r.outcome for r in results] == [
        AppendOutcome.ACCEPTED, AppendOutcome.ACCEPTED, AppendOutcome.RATE_LIMITED]
    assert results[2].retry_after_s > 1
    assert depth(broker) == 2
    # Its key stays free: the same key without the limit is a new application.
    assert append_one(broker, submission("idem-2")).outcome is AppendOutcome.ACCEPTED


def test_rate_limits_are_per_bucket(broker: Broker) -> None:
    subs = [dataclasses.replace(submission(f"idem-{i}", api_key_id=f"key-{i}"),
                                rate_limit=RateLimit(f"key-{i}", rate_per_s=0.01, burst=1))
            for i in range(3)]

    results = asyncio.run(broker.append(subs))

    assert {r.outcome for r in results} == {AppendOutcome.ACCEPTED}


def test_one_append_answers_each_outcome_in_order(broker: Broker) -> None:
    append_one(broker, submission("idem-old", fingerprint="fp-old"))
    limited = dataclasses.replace(submission("idem-limited", api_key_id="key-b"),
                                  rate_limit=RateLimit("key-b", rate_per_s=0.01, burst=1))
    group = [submission("idem-new"), submission("idem-old", fingerprint="fp-old"),
             submission("idem-old", fingerprint="fp-other"), limited, limited]

    results = asyncio.run(broker.append(group))

    assert [r.outcome for r in results] == [
        AppendOutcome.ACCEPTED, AppendOutcome.REPLAYED, AppendOutcome.KEY_REUSED,
        AppendOutcome.ACCEPTED, AppendOutcome.REPLAYED]
    assert depth(broker) == 3


def test_reserved_envelope_is_not_handed_to_a_second_consumer_while_leased(
    broker: Broker,
) -> None:
    append_one(broker, submission())
    [_] = reserve(broker, "c1")

    assert reserve(broker, "c2") == []


def test_reserve_hands_out_oldest_first_and_at_most_max_count(broker: Broker) -> None:
    subs = [submission(f"idem-{i}") for i in range(5)]
    asyncio.run(broker.append(subs))

    deliveries = reserve(broker, max_count=3)

    assert [d.envelope.id for d in deliveries] == [s.envelope.id for s in subs[:3]]


def test_unacked_envelope_is_redelivered_after_the_visibility_timeout(
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(visibility_timeout_s=SHORT_VISIBILITY_S)
    sub = submission()
    append_one(broker, sub)
    [first] = reserve(broker, "crashed-consumer")

    again = reserve_within(broker, "c2")

    assert again.envelope == sub.envelope
    assert (first.deliveries, again.deliveries) == (1, 2)


def test_ack_removes_the_envelope(broker: Broker) -> None:
    sub = submission()
    append_one(broker, sub)
    [delivery] = reserve(broker)

    asyncio.run(broker.ack([delivery]))

    assert depth(broker) == 0
    assert asyncio.run(broker.pending_state(sub.envelope.id)) is None


def test_reserve_acks_the_deliveries_it_is_given_in_the_same_step(broker: Broker) -> None:
    first, second = submission("idem-1"), submission("idem-2")
    append_one(broker, first)
    append_one(broker, second)
    [taken] = reserve(broker, max_count=1)

    [following] = asyncio.run(broker.reserve(1, consumer="c1", ack=[taken]))

    assert following.envelope.id == second.envelope.id
    assert asyncio.run(broker.pending_state(first.envelope.id)) is None
    assert depth(broker) == 1


def test_reserve_acks_what_it_is_given_when_nothing_is_ready(broker: Broker) -> None:
    append_one(broker, submission())
    [taken] = reserve(broker)

    assert asyncio.run(broker.reserve(10, consumer="c1", ack=[taken])) == []

    assert depth(broker) == 0


def test_acked_envelope_is_not_redelivered(broker_factory: BrokerFactory) -> None:
    broker = broker_factory(visibility_timeout_s=SHORT_VISIBILITY_S)
    append_one(broker, submission())
    [delivery] = reserve(broker)
    asyncio.run(broker.ack([delivery]))

    time.sleep(SHORT_VISIBILITY_S * 2)

    assert reserve(broker) == []


def test_retry_later_hides_the_envelope_until_the_delay_then_hands_out_the_update(
    broker: Broker,
) -> None:
    sub = submission()
    append_one(broker, sub)
    [delivery] = reserve(broker)
    failed = AttemptRecord(attempt=1, at_ns=time.time_ns(), error_code="Boom", message="boom")
    updated = msgspec.structs.replace(sub.envelope, attempts=(failed,))

    asyncio.run(broker.retry_later(delivery, updated, 0.3))

    assert reserve(broker, "c2") == []
    again = reserve_within(broker, "c2")
    assert again.envelope == updated
    assert again.envelope.attempts == (failed,)
    assert depth(broker) == 1


def test_release_hands_the_envelope_back_without_counting_a_delivery(broker: Broker) -> None:
    append_one(broker, submission())
    [delivery] = reserve(broker, "c1")

    asyncio.run(broker.release([delivery], 0))

    [again] = reserve(broker, "c2")
    assert again.envelope == delivery.envelope
    assert again.deliveries == delivery.deliveries == 1


def test_a_stale_delivery_cannot_hand_back_an_envelope_another_consumer_holds(
    broker_factory: BrokerFactory,
) -> None:
    # Given consumer A whose lease ran out, and consumer B now holding the envelope
    broker = broker_factory(visibility_timeout_s=0.5)
    append_one(broker, submission())
    [stale] = reserve(broker, "a")
    reserve_within(broker, "b")

    # When A, late, hands its copy back (as the processor does on a store outage)
    asyncio.run(broker.release([stale], 0))

    # Then B still holds it alone: nobody else is handed the envelope
    assert reserve(broker, "c") == []


def test_a_stale_retry_cannot_replace_an_envelope_another_consumer_holds(
    broker_factory: BrokerFactory,
) -> None:
    # Given consumer A whose lease ran out, and consumer B now holding the envelope
    broker = broker_factory(visibility_timeout_s=0.5)
    sub = submission()
    append_one(broker, sub)
    [stale] = reserve(broker, "a")
    held = reserve_within(broker, "b")
    failed = AttemptRecord(attempt=1, at_ns=time.time_ns(), error_code="Late", message="late")
    late_copy = msgspec.structs.replace(sub.envelope, attempts=(failed,))

    # When A, late, schedules its failed copy for a retry
    asyncio.run(broker.retry_later(stale, late_copy, 0))

    # Then B still holds it alone, and B's acknowledgement finishes it
    assert reserve(broker, "c") == []
    asyncio.run(broker.ack([held]))
    assert depth(broker) == 0


# -- pending_state and depth ----------------------------------------------------------


def test_pending_state_reports_queued_before_reserve(broker: Broker) -> None:
    sub = submission()
    append_one(broker, sub)

    state = asyncio.run(broker.pending_state(sub.envelope.id))

    assert state == ("queued", sub.envelope.received_at_ns)


def test_pending_state_reports_processing_while_leased(broker: Broker) -> None:
    sub = submission()
    append_one(broker, sub)
    reserve(broker)

    state = asyncio.run(broker.pending_state(sub.envelope.id))

    assert state == ("processing", sub.envelope.received_at_ns)


def test_pending_state_of_an_unknown_id_is_none(broker: Broker) -> None:
    assert asyncio.run(broker.pending_state(new_application_id())) is None


def test_depth_counts_ready_delayed_and_leased_envelopes(broker: Broker) -> None:
    asyncio.run(broker.append([submission(f"idem-{i}") for i in range(3)]))
    [_leased, delayed] = reserve(broker, max_count=2)
    asyncio.run(broker.retry_later(delayed, delayed.envelope, 60))

    assert depth(broker) == 3


def test_sealed_key_counts_of_an_empty_queue_are_none(broker: Broker) -> None:
    assert asyncio.run(broker.sealed_key_counts()) == {}


def test_sealed_key_counts_count_ready_delayed_and_leased_envelopes_by_key(
    broker: Broker,
) -> None:
    old, new = b"\x01\x02\x03\x04", b"\xaa\xbb\xcc\xdd"
    asyncio.run(broker.append([submission(f"old-{i}", key_id=old) for i in range(4)]
                              + [submission("new-0", key_id=new)]))
    [leased, delayed, acked] = reserve(broker, max_count=3)
    asyncio.run(broker.retry_later(delayed, delayed.envelope, 60))
    asyncio.run(broker.ack([acked]))

    counts = asyncio.run(broker.sealed_key_counts())

    assert leased.envelope.sealed_application.startswith(old)
    assert counts == {old.hex(): 3, new.hex(): 1}


def oldest_wait_s(broker: Broker) -> float | None:
    return asyncio.run(broker.oldest_wait_s())


def test_oldest_wait_of_an_empty_queue_is_none(broker: Broker) -> None:
    assert oldest_wait_s(broker) is None


def test_oldest_wait_grows_while_the_oldest_envelope_waits_and_counts_held_ones(
    broker: Broker,
) -> None:
    asyncio.run(broker.append([submission("first")]))
    time.sleep(0.3)
    asyncio.run(broker.append([submission("second")]))
    reserve(broker, max_count=1)  # held, not done: still lag

    waited = oldest_wait_s(broker)
    assert waited is not None and 0.3 <= waited < WAIT_LIMIT_S


def test_oldest_wait_leaves_out_delayed_retries_and_acked_envelopes(broker: Broker) -> None:
    asyncio.run(broker.append([submission("retry"), submission("done")]))
    retry, done = reserve(broker, max_count=2)
    asyncio.run(broker.retry_later(retry, retry.envelope, 60))
    asyncio.run(broker.ack([done]))

    assert oldest_wait_s(broker) is None


# -- durability -----------------------------------------------------------------------


def test_accepted_envelope_survives_close_and_reopen(broker_factory: BrokerFactory) -> None:
    broker = broker_factory()
    sub = submission()
    append_one(broker, sub)
    broker_factory.close(broker)

    reopened = broker_factory()

    [delivery] = reserve(reopened)
    assert delivery.envelope == sub.envelope


def test_idempotency_key_survives_close_and_reopen(broker_factory: BrokerFactory) -> None:
    broker = broker_factory()
    sub = submission("idem-1", fingerprint="fp-1")
    append_one(broker, sub)
    broker_factory.close(broker)

    result = append_one(broker_factory(), submission("idem-1", fingerprint="fp-1"))

    assert (result.outcome, result.application_id) == (AppendOutcome.REPLAYED, sub.envelope.id)


# -- idempotency key retention (the window, 24 h by default) ---------------------------


def expire_keys(broker: Broker, *, now_ns: int) -> int:
    return asyncio.run(broker.expire_idempotency_keys(now_ns=now_ns))


def test_keys_older_than_the_window_are_forgotten_and_can_be_claimed_again(
    broker: Broker,
) -> None:
    sub = submission("idem-1", fingerprint="fp-1")
    append_one(broker, sub)
    later_ns = sub.envelope.received_at_ns + IDEMPOTENCY_TTL_S * 1_000_000_000 + HOUR_NS

    forgotten = expire_keys(broker, now_ns=later_ns)

    assert forgotten == 1
    fresh = submission("idem-1", fingerprint="fp-other")
    result = append_one(broker, fresh)
    assert (result.outcome, result.application_id) == (AppendOutcome.ACCEPTED, fresh.envelope.id)


def test_keys_younger_than_the_window_are_kept(broker: Broker) -> None:
    sub = submission("idem-1", fingerprint="fp-1")
    append_one(broker, sub)
    almost_ns = sub.envelope.received_at_ns + IDEMPOTENCY_TTL_S * 1_000_000_000 - HOUR_NS

    forgotten = expire_keys(broker, now_ns=almost_ns)

    assert forgotten == 0
    assert append_one(broker, submission("idem-1")).outcome is AppendOutcome.REPLAYED


def test_the_window_is_the_brokers_setting(broker_factory: BrokerFactory) -> None:
    # Given a broker that keeps keys for 10 minutes,
    broker = broker_factory(idempotency_window_s=600)
    sub = submission("idem-1", fingerprint="fp-1")
    append_one(broker, sub)
    received_ns = sub.envelope.received_at_ns

    # a key is kept within them and forgotten after.
    assert expire_keys(broker, now_ns=received_ns + 590 * 1_000_000_000) == 0
    assert expire_keys(broker, now_ns=received_ns + 610 * 1_000_000_000) == 1


# -- requeue (replay from the dead letters) ------------------------------------------------


def test_requeued_envelope_is_delivered_again_under_its_id(broker: Broker) -> None:
    sub = submission()
    append_one(broker, sub)
    [taken] = reserve(broker)
    asyncio.run(broker.ack([taken]))
    replayed = msgspec.structs.replace(sub.envelope, attempts=())

    asyncio.run(broker.requeue([replayed]))

    [again] = reserve(broker)
    assert again.envelope.id == sub.envelope.id
    assert asyncio.run(broker.depth()) == 1


def test_requeue_of_an_application_still_held_replaces_it(broker: Broker) -> None:
    sub = submission()
    append_one(broker, sub)
    replayed = msgspec.structs.replace(sub.envelope, sealed_application=b"corrected")

    asyncio.run(broker.requeue([replayed]))

    assert asyncio.run(broker.depth()) == 1
    [taken] = reserve(broker)
    assert (taken.envelope, taken.deliveries) == (replayed, 1)


def test_a_requeue_survives_the_late_ack_of_the_delivery_it_replaced(broker: Broker) -> None:
    # Given a delivery whose result (a dead letter) is stored but whose ack is still
    # pending: it rides on the processor's next reserve
    sub = submission()
    append_one(broker, sub)
    [dead_lettered] = reserve(broker)
    # When an operator replays it meanwhile, and then the ack comes
    replayed = msgspec.structs.replace(sub.envelope, attempts=())
    asyncio.run(broker.requeue([replayed]))
    taken = asyncio.run(broker.reserve(10, consumer="c1", ack=[dead_lettered]))

    # Then the replay is still there to be processed, once
    assert [(d.envelope, d.deliveries) for d in taken] == [(replayed, 1)]
    assert asyncio.run(broker.depth()) == 1


@pytest.mark.parametrize("hand_back", ["retry_later", "release"])
def test_the_replaced_holder_cannot_hand_back_over_a_requeue(
    broker: Broker, hand_back: str
) -> None:
    sub = submission()
    append_one(broker, sub)
    [old] = reserve(broker)
    asyncio.run(broker.requeue([msgspec.structs.replace(sub.envelope, attempts=())]))
    [new] = reserve(broker)

    if hand_back == "retry_later":
        asyncio.run(broker.retry_later(old, old.envelope, 0))
    else:
        asyncio.run(broker.release([old], 0))

    assert reserve(broker) == []
    asyncio.run(broker.ack([new]))
    assert asyncio.run(broker.depth()) == 0


def test_requeue_claims_no_idempotency_key(broker: Broker) -> None:
    sub = submission("idem-requeue")
    asyncio.run(broker.requeue([sub.envelope]))

    [result] = asyncio.run(broker.append([submission("idem-requeue")]))

    assert result.outcome is AppendOutcome.ACCEPTED


# -- an idle consumer ---------------------------------------------------------------


def test_an_idle_consumer_wakes_on_an_append_and_otherwise_looks_again_soon(
    broker: Broker,
) -> None:
    async def scenario() -> tuple[float, float]:
        assert await broker.reserve(10, consumer="c1") == []
        wake = asyncio.Event()
        started = time.monotonic()
        await broker.wait_for_work("c1", wake=wake)  # nothing comes: a poll's bound
        idle_s = time.monotonic() - started

        waiting = asyncio.create_task(broker.wait_for_work("c1", wake=wake))
        await asyncio.sleep(0.005)
        appended = time.monotonic()
        await broker.append([submission()])
        wake.set()  # as the runtime does after an append in this process
        await waiting
        return idle_s, time.monotonic() - appended

    idle_s, woke_after_s = asyncio.run(scenario())
    assert idle_s < 1.0
    assert woke_after_s < 0.5
    assert len(reserve(broker)) == 1


def test_a_consumer_that_just_took_work_looks_again_sooner_than_an_idle_one(
    broker: Broker,
) -> None:
    """An idle consumer waits longer between looks (0.1 s): an idle service costs ~no CPU."""
    async def waited_s(consumer: str) -> float:
        assert await broker.reserve(10, consumer=consumer) == []
        started = time.monotonic()
        await broker.wait_for_work(consumer)
        return time.monotonic() - started

    async def scenario() -> tuple[float, float]:
        await broker.append([submission()])
        [delivery] = await broker.reserve(10, consumer="busy")
        await broker.ack([delivery])
        return await waited_s("busy"), await waited_s("idle")

    busy_s, idle_s = asyncio.run(scenario())
    assert busy_s < idle_s
    assert idle_s >= 0.09
