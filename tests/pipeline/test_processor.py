"""The processor over a real SQLite broker and store, in burst mode (`drain()`)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from loanflow.api.schema import decode_application
from loanflow.backends.sqlite.broker import SQLiteBroker
from loanflow.backends.sqlite.database import SQLiteDatabase
from loanflow.backends.sqlite.store import SQLiteStore
from loanflow.backends.sqlite.velocity import SQLiteVelocityCounter
from loanflow.broker.base import AppendOutcome, Delivery, Submission
from loanflow.domain.flags import FLAG_EMAIL_VELOCITY
from loanflow.domain.product import Product, ProductSource, load_product
from loanflow.errors import StoreUnavailable
from loanflow.models import Envelope, new_application_id
from loanflow.pii import PiiCipher
from loanflow.pipeline.backlog import Backlog
from loanflow.pipeline.processor import FLAG_DUPLICATE_SSN, Processor
from loanflow.pipeline.velocity import VelocityCheck, VelocityUnavailable
from loanflow.store.base import ApplicationRecord
from tests.conftest import sample_application

PRODUCT = load_product()
DAY_NS = 86_400 * 1_000_000_000
#: Upper bound on waiting for a retry's backoff (attempt n waits at most 0.5 * 2**n s).
WAIT_LIMIT_S = 8.0

SSN_NEEDLES = (b"123-45-6789", b"123456789")
DOB_NEEDLES = (b"1985-12-10",)


class Pipeline:
    """A broker and a store in one data directory, and what a test does with them."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.cipher = PiiCipher([os.urandom(32)])
        self.broker = SQLiteBroker(data_dir / "broker.db", visibility_timeout_s=30.0)
        self.store = SQLiteStore(data_dir / "store.db")
        self.counters: list[SQLiteVelocityCounter] = []

    def open(self) -> None:
        asyncio.run(self.broker.open())
        asyncio.run(self.store.open())

    def close(self) -> None:
        for counter in self.counters:
            asyncio.run(counter.close())
        asyncio.run(self.broker.close())
        asyncio.run(self.store.close())

    def processor(
        self,
        *,
        max_attempts: int = 3,
        batch_size: int = 200,
        velocity: VelocityCheck | None = None,
        product: Product | ProductSource = PRODUCT,
        name: str = "test-processor",
        backlog: Backlog | None = None,
        backlog_only: bool = False,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> Processor:
        return Processor(
            self.broker,
            self.store,
            cipher=self.cipher,
            product=product,
            velocity=velocity,
            name=name,
            batch_size=batch_size,
            max_attempts=max_attempts,
            backlog=backlog,
            backlog_only=backlog_only,
            clock_ns=clock_ns,
        )

    def velocity(self, *, limit: int = 3) -> tuple[VelocityCheck, SQLiteVelocityCounter]:
        """A velocity check counting in the store's file, as in embedded mode."""
        counter = SQLiteVelocityCounter(self.store.database)
        asyncio.run(counter.open())
        self.counters.append(counter)
        check = VelocityCheck(counter, hash_key=self.cipher.subkey("velocity"), limit=limit,
                              ip_limit=10, window_s=3600)
        return check, counter

    def envelope(self, data: dict[str, Any], *, received_at_ns: int | None = None) -> Envelope:
        """Sealed the way `POST /v1/applications` seals it."""
        application = decode_application(msgspec.json.encode(data))
        now_ns = time.time_ns() if received_at_ns is None else received_at_ns
        return Envelope(
            id=new_application_id(now_ns),
            received_at_ns=now_ns,
            api_key_id="key-a",
            idempotency_key=str(uuid.uuid4()),
            client_ip="192.0.2.1",
            channel=application.channel,
            partner_id=application.partner_id,
            external_id=application.external_id,
            sealed_application=self.cipher.seal(msgspec.msgpack.encode(application)),
        )

    def poison(self) -> Envelope:
        """An envelope no attempt can open."""
        now_ns = time.time_ns()
        return Envelope(
            id=new_application_id(now_ns),
            received_at_ns=now_ns,
            api_key_id="key-a",
            idempotency_key=str(uuid.uuid4()),
            channel="web",
            sealed_application=b"garbage",
        )

    def enqueue(self, *envelopes: Envelope) -> None:
        submissions = [Submission(e, self._fingerprint(e)) for e in envelopes]
        results = asyncio.run(self.broker.append(submissions))
        assert {r.outcome for r in results} == {AppendOutcome.ACCEPTED}

    def submit(self, data: dict[str, Any] | None = None, **options: Any) -> Envelope:
        envelope = self.envelope(sample_application() if data is None else data, **options)
        self.enqueue(envelope)
        return envelope

    def _fingerprint(self, envelope: Envelope) -> str:
        # Every test envelope has its own idempotency key, so any distinct value will do.
        return self.cipher.keyed_hash(envelope.idempotency_key.encode())

    def record(self, application_id: str) -> ApplicationRecord | None:
        return asyncio.run(self.store.get_application(application_id))

    def stored(self, application_id: str) -> ApplicationRecord:
        found = self.record(application_id)
        assert found is not None, f"{application_id} is not in the store"
        return found

    def document(self, application_id: str) -> dict[str, Any]:
        document: dict[str, Any] = msgspec.json.decode(self.stored(application_id).document)
        return document

    def depth(self) -> int:
        return asyncio.run(self.broker.depth())

    def store_rows(self) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.data_dir / "store.db") as conn:
            return conn.execute("SELECT * FROM applications").fetchall()


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    p = Pipeline(tmp_path)
    p.open()
    yield p
    p.close()


def drain(processor: Processor) -> int:
    return asyncio.run(processor.drain())


def one_batch(processor: Processor) -> int:
    """One batch, acked as the loop's next reserve would ack it; how many were taken."""
    async def main() -> int:
        taken = await processor.process_batch()
        await processor.ack_committed()
        return taken

    return asyncio.run(main())


def reserve_within(pipeline: Pipeline, timeout_s: float = WAIT_LIMIT_S) -> Delivery:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        deliveries = asyncio.run(pipeline.broker.reserve(1, consumer="inspector"))
        if deliveries:
            return deliveries[0]
        time.sleep(0.02)
    raise AssertionError(f"nothing became ready within {timeout_s}s")


# -- outcomes -----------------------------------------------------------------------------


def test_valid_application_is_stored_with_its_enrichment(pipeline: Pipeline) -> None:
    envelope = pipeline.submit()

    taken = drain(pipeline.processor())

    assert taken == 1
    record = pipeline.stored(envelope.id)
    assert record.status == "stored"
    assessment = pipeline.document(envelope.id)["assessment"]
    assert assessment["enrichment"]["city"] == "San Francisco"
    assert assessment["violations"] == []
    assert (record.rules_version, record.product_version) == (
        assessment["rules_version"], PRODUCT.version
    )


def test_stored_record_carries_the_route_of_its_assessment(pipeline: Pipeline) -> None:
    envelope = pipeline.submit()

    drain(pipeline.processor())

    route = pipeline.document(envelope.id)["assessment"]["enrichment"]["route"]
    assert route in ("fast_track", "manual_review", "decline_recommended")
    assert pipeline.stored(envelope.id).route == route


def test_stored_record_keeps_the_envelope_identity(pipeline: Pipeline) -> None:
    envelope = pipeline.submit()

    drain(pipeline.processor())

    record = pipeline.stored(envelope.id)
    assert (record.api_key_id, record.idempotency_key, record.channel) == (
        envelope.api_key_id, envelope.idempotency_key, envelope.channel
    )
    assert (record.external_id, record.received_at_ns) == ("crm-000123", envelope.received_at_ns)
    assert record.processed_at_ns >= record.received_at_ns


def test_processed_application_leaves_the_broker(pipeline: Pipeline) -> None:
    envelope = pipeline.submit()

    drain(pipeline.processor())

    assert pipeline.depth() == 0
    assert asyncio.run(pipeline.broker.pending_state(envelope.id)) is None


def test_rule_breaking_application_is_rejected_with_all_its_codes(pipeline: Pipeline) -> None:
    envelope = pipeline.submit(
        sample_application(loan__amount=500.0, consent__credit_check=False)
    )

    drain(pipeline.processor())

    assert pipeline.stored(envelope.id).status == "rejected"
    assessment = pipeline.document(envelope.id)["assessment"]
    assert [v["code"] for v in assessment["violations"]] == [
        "loan.amount.below_minimum",
        "consent.credit_check.missing",
    ]
    assert assessment["enrichment"] is None
    assert pipeline.stored(envelope.id).route is None
    assert pipeline.depth() == 0


def test_decision_date_is_the_day_the_application_was_received(pipeline: Pipeline) -> None:
    # Given an applicant who was 17 when the application arrived three days ago
    # and turned 18 yesterday (a replay from the dead letters must decide the same way)
    today = dt.datetime.now(dt.UTC).date()
    birthday = today - dt.timedelta(days=1)
    try:
        dob = birthday.replace(year=birthday.year - 18)
    except ValueError:  # 29 February
        dob = dt.date(birthday.year - 18, 2, 28)
    received_at_ns = time.time_ns() - 3 * DAY_NS
    envelope = pipeline.submit(
        sample_application(applicant__date_of_birth=dob.isoformat()),
        received_at_ns=received_at_ns,
    )

    # When it is processed today
    drain(pipeline.processor())

    # Then it is judged as of the day it was received
    assessment = pipeline.document(envelope.id)["assessment"]
    assert [v["code"] for v in assessment["violations"]] == ["applicant.age.under_minimum"]


# -- PII at rest --------------------------------------------------------------------------


def test_no_ssn_or_date_of_birth_is_stored_in_clear(pipeline: Pipeline) -> None:
    # Given a stored and a rejected application carrying the same SSN and date of birth
    stored = pipeline.submit()
    rejected = pipeline.submit(sample_application(loan__amount=500.0))
    drain(pipeline.processor())
    rows = pipeline.store_rows()
    pipeline.close()  # checkpoint the WAL into the main file

    # Then neither any column nor any byte of the data files shows them in clear
    assert {row[0] for row in rows} == {stored.id, rejected.id}
    for row in rows:
        for value in row:
            as_bytes = value if isinstance(value, bytes) else str(value).encode()
            for needle in SSN_NEEDLES + DOB_NEEDLES:
                assert needle not in as_bytes, f"{needle!r} in a column of {row[0]}"
    for path in pipeline.data_dir.iterdir():
        content = path.read_bytes()
        for needle in SSN_NEEDLES + DOB_NEEDLES:
            assert needle not in content, f"{needle!r} in {path.name}"


def test_stored_document_shows_masked_ssn_and_date_of_birth(pipeline: Pipeline) -> None:
    envelope = pipeline.submit()

    drain(pipeline.processor())

    applicant = pipeline.document(envelope.id)["application"]["applicant"]
    assert (applicant["ssn"], applicant["date_of_birth"]) == ("***-**-6789", "****-**-**")


def test_sealed_pii_opens_back_to_the_ssn_digits_and_date_of_birth(pipeline: Pipeline) -> None:
    envelope = pipeline.submit()

    drain(pipeline.processor())

    sealed = pipeline.stored(envelope.id).pii_sealed
    assert sealed is not None
    assert msgspec.json.decode(pipeline.cipher.open(sealed)) == {
        "ssn": "123456789",
        "dob": "1985-12-10",
    }


def test_ssn_hash_is_the_keyed_hash_of_the_ssn_digits(pipeline: Pipeline) -> None:
    envelope = pipeline.submit(sample_application(applicant__ssn="123456789"))

    drain(pipeline.processor())

    assert pipeline.stored(envelope.id).ssn_hash == pipeline.cipher.keyed_hash(b"123456789")


# -- failures -----------------------------------------------------------------------------


def test_poison_envelope_is_kept_for_retry_with_the_attempt_recorded(pipeline: Pipeline) -> None:
    poison = pipeline.poison()
    pipeline.enqueue(poison)

    asyncio.run(pipeline.processor(max_attempts=3).process_batch())

    assert pipeline.record(poison.id) is None
    assert pipeline.depth() == 1
    retried = reserve_within(pipeline)
    assert retried.envelope.id == poison.id
    assert [(a.attempt, a.error_code) for a in retried.envelope.attempts] == [(1, "PiiKeyError")]


def test_poison_envelope_does_not_hold_up_its_batch_neighbours(pipeline: Pipeline) -> None:
    before = pipeline.envelope(sample_application())
    poison = pipeline.poison()
    after = pipeline.envelope(sample_application())
    pipeline.enqueue(before, poison, after)

    taken = one_batch(pipeline.processor(max_attempts=3))

    assert taken == 3
    assert pipeline.stored(before.id).status == "stored"
    assert pipeline.stored(after.id).status == "stored"
    assert pipeline.depth() == 1


def test_poison_envelope_is_dead_lettered_after_max_attempts_with_every_error(
    pipeline: Pipeline,
) -> None:
    # Given a poison envelope and a processor allowed three attempts
    poison = pipeline.poison()
    pipeline.enqueue(poison)
    processor = pipeline.processor(max_attempts=3)

    # When the processor keeps taking what is ready (the backoff is short and random)
    deadline = time.monotonic() + WAIT_LIMIT_S
    while pipeline.record(poison.id) is None:
        assert time.monotonic() < deadline, "not dead-lettered in time"
        one_batch(processor)
        time.sleep(0.02)

    # Then it is dead-lettered with one attempt record per try, and gone from the broker
    assert pipeline.stored(poison.id).status == "dead_lettered"
    assert pipeline.stored(poison.id).route is None
    attempts = pipeline.document(poison.id)["attempts"]
    assert [(a["attempt"], a["error_code"]) for a in attempts] == [
        (1, "PiiKeyError"), (2, "PiiKeyError"), (3, "PiiKeyError")
    ]
    assert pipeline.depth() == 0


def test_an_application_stored_on_a_retry_keeps_its_failed_attempts(pipeline: Pipeline) -> None:
    flaky = pipeline.envelope(sample_application(external_id="FLAKY-1"))
    steady = pipeline.envelope(sample_application())
    pipeline.enqueue(flaky, steady)
    failing = Processor(pipeline.broker, pipeline.store, cipher=pipeline.cipher, product=PRODUCT,
                        name="failing", max_attempts=3, fail_marker="FLAKY-")
    asyncio.run(failing.process_batch())
    asyncio.run(failing.ack_committed())

    retried = reserve_within(pipeline)
    asyncio.run(pipeline.broker.release([retried], 0))
    drain(pipeline.processor(max_attempts=3))

    assert pipeline.stored(flaky.id).status == "stored"
    attempts = pipeline.document(flaky.id)["attempts"]
    assert [(a["attempt"], a["error_code"]) for a in attempts] == [(1, "InjectedFault")]
    assert "attempts" not in pipeline.document(steady.id)


def test_store_outage_leaves_the_batch_in_the_broker(pipeline: Pipeline) -> None:
    envelope = pipeline.submit()
    asyncio.run(pipeline.store.close())

    with pytest.raises(StoreUnavailable):
        asyncio.run(pipeline.processor().process_batch())

    assert pipeline.depth() == 1
    assert asyncio.run(pipeline.broker.pending_state(envelope.id)) == (
        "queued", envelope.received_at_ns
    )


# -- exactly-once effect ------------------------------------------------------------------


def test_redelivered_envelope_leaves_one_row_with_the_first_result(pipeline: Pipeline) -> None:
    # Given an application already processed and stored
    envelope = pipeline.submit()
    processor = pipeline.processor()
    drain(processor)
    first = pipeline.stored(envelope.id)

    # When the broker hands the same envelope out again (as after a crash before the ack)
    pipeline.enqueue(msgspec.structs.replace(envelope, idempotency_key=str(uuid.uuid4())))
    taken = drain(processor)

    # Then it is taken and acked, and the store still holds the first result only
    assert taken == 1
    assert pipeline.depth() == 0
    assert pipeline.stored(envelope.id) == first
    assert [row[0] for row in pipeline.store_rows()] == [envelope.id]


def test_a_backlog_of_500_drains_in_one_call_each_stored_once(pipeline: Pipeline) -> None:
    envelopes = [
        pipeline.envelope(sample_application(external_id=f"crm-{i:06d}")) for i in range(500)
    ]
    pipeline.enqueue(*envelopes)

    taken = drain(pipeline.processor())

    assert taken == 500
    assert pipeline.depth() == 0
    rows = pipeline.store_rows()
    assert sorted(row[0] for row in rows) == sorted(e.id for e in envelopes)
    assert {row[1] for row in rows} == {"stored"}


def run_for(processor: Processor, seconds: float) -> None:
    """`processor.run` as a service runs it, stopped after `seconds`."""
    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stop.set)
        await processor.run(stop)

    asyncio.run(main())


def main_and_backlog_loop(pipeline: Pipeline) -> tuple[Processor, Processor]:
    """A main loop and a backlog loop sharing one Backlog, batches of 10."""
    backlog = Backlog()
    return (pipeline.processor(batch_size=10, backlog=backlog),
            pipeline.processor(batch_size=10, backlog=backlog, backlog_only=True, name="extra"))


def test_a_backlog_loop_leaves_less_than_a_full_batch_to_the_main_loop(
    pipeline: Pipeline,
) -> None:
    pipeline.enqueue(*(pipeline.envelope(sample_application()) for _ in range(5)))
    main, extra = main_and_backlog_loop(pipeline)

    drain(main)  # 5 of at most 10: no backlog
    pipeline.enqueue(*(pipeline.envelope(sample_application()) for _ in range(5)))
    run_for(extra, 0.5)

    assert pipeline.depth() == 5  # the extra loop took nothing


def test_a_backlog_loop_takes_batches_while_full_ones_wait(pipeline: Pipeline) -> None:
    envelopes = [pipeline.envelope(sample_application()) for _ in range(35)]
    pipeline.enqueue(*envelopes)
    main, extra = main_and_backlog_loop(pipeline)

    assert one_batch(main) == 10  # full: a backlog waits
    run_for(extra, 1.0)

    assert pipeline.depth() == 0
    assert sorted(row[0] for row in pipeline.store_rows()) == sorted(e.id for e in envelopes)


def test_a_batch_is_acked_with_the_next_reserve(pipeline: Pipeline) -> None:
    first = [pipeline.envelope(sample_application()) for _ in range(3)]
    pipeline.enqueue(*first)
    processor = pipeline.processor()
    asyncio.run(processor.process_batch())
    assert pipeline.depth() == 3  # stored, its acks wait for the next round trip

    pipeline.enqueue(pipeline.envelope(sample_application()))
    assert asyncio.run(processor.process_batch()) == 1

    assert [asyncio.run(pipeline.broker.pending_state(e.id)) for e in first] == [None] * 3
    assert pipeline.depth() == 1


def test_a_loop_stopped_during_a_batch_acks_it_before_it_ends(pipeline: Pipeline) -> None:
    envelopes = [pipeline.envelope(sample_application()) for _ in range(3)]
    pipeline.enqueue(*envelopes)

    async def main() -> None:
        stop = asyncio.Event()

        def clock_that_stops_the_loop() -> int:  # the processor reads it mid-batch
            stop.set()
            return time.time_ns()

        await pipeline.processor(clock_ns=clock_that_stops_the_loop).run(stop)

    asyncio.run(main())

    assert {pipeline.stored(e.id).status for e in envelopes} == {"stored"}
    assert pipeline.depth() == 0


def test_a_backlog_loop_acks_its_last_batch_before_it_waits(pipeline: Pipeline) -> None:
    envelopes = [pipeline.envelope(sample_application()) for _ in range(15)]
    pipeline.enqueue(*envelopes)
    main, extra = main_and_backlog_loop(pipeline)
    assert one_batch(main) == 10  # full: a backlog waits

    async def depth_while_the_extra_loop_waits() -> int:
        """Once its last batch (5 of 10: no backlog now) is stored, the loop waits."""
        stop = asyncio.Event()
        running = asyncio.create_task(extra.run(stop))
        deadline = time.monotonic() + WAIT_LIMIT_S
        while await pipeline.store.get_application(envelopes[-1].id) is None:
            assert time.monotonic() < deadline, "the extra loop did not take the backlog"
            await asyncio.sleep(0.02)
        while await pipeline.broker.depth() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)  # its ack follows the commit
        depth = await pipeline.broker.depth()
        stop.set()
        await running
        return depth

    assert asyncio.run(depth_while_the_extra_loop_waits()) == 0


# -- the same SSN within 24 h: flagged for review, never refused -----------------------------


def flags_of(pipeline: Pipeline, envelope: Envelope) -> list[str]:
    enrichment = pipeline.document(envelope.id)["assessment"]["enrichment"]
    return list(enrichment["flags"])


def test_an_ssn_seen_in_an_earlier_batch_is_flagged(pipeline: Pipeline) -> None:
    first = pipeline.submit()
    drain(pipeline.processor())
    second = pipeline.submit()

    drain(pipeline.processor())

    assert FLAG_DUPLICATE_SSN not in flags_of(pipeline, first)
    assert FLAG_DUPLICATE_SSN in flags_of(pipeline, second)
    assert pipeline.stored(second.id).status == "stored"
    route = pipeline.document(second.id)["assessment"]["enrichment"]["route"]
    assert route != "fast_track"


def test_the_second_of_one_ssn_in_one_batch_is_flagged(pipeline: Pipeline) -> None:
    first, second = pipeline.submit(), pipeline.submit()

    drain(pipeline.processor())

    assert FLAG_DUPLICATE_SSN not in flags_of(pipeline, first)
    assert FLAG_DUPLICATE_SSN in flags_of(pipeline, second)


def test_different_ssns_are_not_flagged(pipeline: Pipeline) -> None:
    pipeline.submit()
    other = pipeline.submit(sample_application(applicant__ssn="234-56-7890"))

    drain(pipeline.processor())

    assert FLAG_DUPLICATE_SSN not in flags_of(pipeline, other)


def test_an_ssn_seen_more_than_24_h_ago_is_not_flagged(pipeline: Pipeline) -> None:
    old = pipeline.submit(received_at_ns=time.time_ns() - 25 * 3600 * 1_000_000_000)
    drain(pipeline.processor())
    fresh = pipeline.submit()

    drain(pipeline.processor())

    assert pipeline.stored(old.id).status == "stored"
    assert FLAG_DUPLICATE_SSN not in flags_of(pipeline, fresh)


# -- velocity: one email in more applications than the limit within the window ----------------


def enrichment_of(pipeline: Pipeline, envelope: Envelope) -> dict[str, Any]:
    enrichment: dict[str, Any] = pipeline.document(envelope.id)["assessment"]["enrichment"]
    return enrichment


def one_email_apps(count: int) -> list[dict[str, Any]]:
    """Applications sharing an email, each with its own SSN and phone (only velocity flags)."""
    return [
        sample_application(applicant__ssn=f"123-45-{6780 + i}",
                           applicant__phone=f"+1 415 555 01{10 + i}")
        for i in range(count)
    ]


def test_one_email_over_the_velocity_limit_goes_to_manual_review_with_the_reason(
    pipeline: Pipeline,
) -> None:
    # Given four applications with one email within the hour, the limit being three
    velocity, _ = pipeline.velocity(limit=3)
    start_ns = time.time_ns() - 60 * 1_000_000_000
    envelopes = [
        pipeline.submit(data, received_at_ns=start_ns + i * 1_000_000_000)
        for i, data in enumerate(one_email_apps(4))
    ]

    # When they are processed (two batches: the counts span processor batches)
    drain(pipeline.processor(velocity=velocity, batch_size=2))

    # Then the fourth is flagged and sent to review with the reason; the third is not
    third, fourth = enrichment_of(pipeline, envelopes[2]), enrichment_of(pipeline, envelopes[3])
    assert FLAG_EMAIL_VELOCITY not in third["flags"]
    assert FLAG_EMAIL_VELOCITY in fourth["flags"]
    assert fourth["route"] == "manual_review"
    reasons = {r["code"]: r["message"] for r in fourth["route_reasons"]}
    assert "velocity limit" in reasons[f"route.flag.{FLAG_EMAIL_VELOCITY}"]
    counts = {t["name"]: t for t in fourth["trace"] if t["name"].startswith("velocity_")}
    assert counts["velocity_email_count"] == {
        "name": "velocity_email_count", "value": 4, "inputs": {"limit": 3, "window_s": 3600},
    }
    assert counts["velocity_phone_count"]["value"] == 1
    assert pipeline.stored(envelopes[3].id).status == "stored"


def test_a_redelivered_application_is_not_counted_twice(pipeline: Pipeline) -> None:
    # Given three applications with one email, processed, the limit being three
    velocity, _ = pipeline.velocity(limit=3)
    envelopes = [pipeline.submit(data) for data in one_email_apps(3)]
    processor = pipeline.processor(velocity=velocity)
    drain(processor)

    # When the broker hands the third out again (a crash before the ack)
    third = envelopes[2]
    pipeline.enqueue(msgspec.structs.replace(third, idempotency_key=str(uuid.uuid4())))
    drain(processor)

    # Then it is still the third, not a fourth
    assert FLAG_EMAIL_VELOCITY not in enrichment_of(pipeline, third)["flags"]


def test_velocity_outage_leaves_the_batch_in_the_broker(pipeline: Pipeline) -> None:
    # Counts in a file of their own, closed: an outage of the counter alone.
    closed = SQLiteDatabase(pipeline.data_dir / "velocity.db", unavailable=StoreUnavailable)
    velocity = VelocityCheck(SQLiteVelocityCounter(closed), hash_key=b"k" * 32, limit=3,
                             ip_limit=10, window_s=3600)
    envelope = pipeline.submit()

    with pytest.raises(VelocityUnavailable):
        asyncio.run(pipeline.processor(velocity=velocity).process_batch())

    assert pipeline.record(envelope.id) is None
    assert asyncio.run(pipeline.broker.pending_state(envelope.id)) == (
        "queued", envelope.received_at_ns
    )


# -- the product configuration in force --------------------------------------------------------


def test_an_edited_product_file_prices_the_next_batch(pipeline: Pipeline) -> None:
    # Given a processor following a product file, and an application priced by it
    path = pipeline.data_dir / "product.toml"
    path.write_text(PACKAGED_TOML)
    clock = FakeClock()
    source = ProductSource.from_file(path, clock=clock)
    processor = pipeline.processor(product=source)
    before = pipeline.submit()
    drain(processor)

    # When the file gets a new version with every APR 1 % higher, and a second passes
    path.write_text(
        PACKAGED_TOML.replace('version = "personal-loan-2026.1"', 'version = "bumped"')
        .replace("A = 799", "A = 899").replace("B = 1199", "B = 1299")
        .replace("C = 1599", "C = 1699").replace("D = 2199", "D = 2299")
        .replace("E = 2999", "E = 3099")
    )
    clock.now += 1.0
    after = pipeline.submit()
    drain(processor)

    # Then the next application is priced by the new file and names its version
    apr_before = enrichment_of(pipeline, before)["apr_bps"]
    assert enrichment_of(pipeline, after)["apr_bps"] == apr_before + 100
    assert pipeline.stored(after.id).product_version == "bumped"
    assert pipeline.stored(before.id).product_version == PRODUCT.version


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


PACKAGED_TOML = (
    Path(__file__).parents[2] / "src" / "loanflow" / "domain" / "product.toml"
).read_text()
