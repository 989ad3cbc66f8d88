"""A batch that keeps killing its processor is split, over a real SQLite broker and
store: the crash is a consumer that takes the batch and never answers (the real crash,
an `os._exit` in a worker process, is in tests/test_poison_crash.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from loanflow.backends.sqlite.broker import SQLiteBroker
from loanflow.broker.base import Delivery
from loanflow.models import AttemptRecord, Envelope
from loanflow.pipeline.poison import split, unexplained_redeliveries
from tests.pipeline.test_processor import Pipeline, drain, one_batch

#: Short enough that a test can watch a dead consumer's lease run out.
SHORT_VISIBILITY_S = 0.05
WAIT_LIMIT_S = 5.0


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    p = Pipeline(tmp_path)
    p.broker = SQLiteBroker(tmp_path / "broker.db", visibility_timeout_s=SHORT_VISIBILITY_S)
    p.open()
    yield p
    p.close()


def lose_batch(pipeline: Pipeline, *envelopes: Envelope) -> None:
    """A processor takes the batch and dies; return once the broker offers it again."""
    taken = asyncio.run(pipeline.broker.reserve(len(envelopes), consumer="dies"))
    assert {d.envelope.id for d in taken} == {e.id for e in envelopes}
    deadline = time.monotonic() + WAIT_LIMIT_S
    for envelope in envelopes:
        while asyncio.run(pipeline.broker.pending_state(envelope.id))[0] != "queued":  # type: ignore[index]
            assert time.monotonic() < deadline, "the lease did not run out"
            time.sleep(0.01)


def test_a_batch_handed_out_twice_without_an_answer_is_tried_one_at_a_time(
    pipeline: Pipeline,
) -> None:
    # Given a batch of three whose processor died twice holding it
    batch = [pipeline.submit() for _ in range(3)]
    lose_batch(pipeline, *batch)
    lose_batch(pipeline, *batch)
    processor = pipeline.processor()

    # When a processor takes it again
    taken = one_batch(processor)

    # Then it tries the oldest alone and hands the others back without counting them
    assert taken == 1
    assert pipeline.stored(batch[0].id).status == "stored"
    assert pipeline.record(batch[1].id) is None and pipeline.record(batch[2].id) is None
    held = asyncio.run(pipeline.broker.reserve(10, consumer="inspector"))
    # Sorted both sides: ids made in the same millisecond need not sort in creation order.
    assert sorted((d.envelope.id, d.deliveries) for d in held) == sorted([
        (batch[1].id, 3), (batch[2].id, 3)])
    asyncio.run(pipeline.broker.release(held, 0.0))
    # and the rest follow, one at a time
    assert drain(processor) == 2
    assert {pipeline.stored(e.id).status for e in batch} == {"stored"}
    assert pipeline.depth() == 0


def test_a_batch_handed_out_once_without_an_answer_is_still_taken_whole(
    pipeline: Pipeline,
) -> None:
    batch = [pipeline.submit() for _ in range(3)]
    lose_batch(pipeline, *batch)

    assert asyncio.run(pipeline.processor().process_batch()) == 3


def delivery(deliveries: int, failed_attempts: int = 0) -> Delivery:
    attempts = tuple(AttemptRecord(attempt=i + 1, at_ns=i, error_code="E", message="")
                     for i in range(failed_attempts))
    envelope = Envelope(id=f"app-{deliveries}-{failed_attempts}", received_at_ns=0,
                        api_key_id="k", idempotency_key="i", channel="web",
                        sealed_application=b"")
    return Delivery("t", msgspec.structs.replace(envelope, attempts=attempts), deliveries)


def test_recorded_failures_explain_their_redeliveries() -> None:
    retried = delivery(5, failed_attempts=4)

    assert unexplained_redeliveries(retried) == 0
    assert split([retried, delivery(1)]) == ([retried, delivery(1)], [])


def test_a_suspect_is_split_from_its_batch_whatever_its_place() -> None:
    fresh, suspect, other = delivery(1), delivery(4, failed_attempts=1), delivery(2)

    assert split([fresh, suspect, other]) == ([suspect], [fresh, other])
