"""What operators decide about dead letters holds against the pipeline, over a real
SQLite broker and store: a replay always leads to processing again; a discard stays."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from loanflow.api.schema import decode_application
from loanflow.backends.sqlite.broker import SQLiteBroker
from loanflow.review.dead_letters import ManualReview
from tests.conftest import sample_application
from tests.pipeline.test_processor import WAIT_LIMIT_S, Pipeline, drain, pipeline

__all__ = ["pipeline"]  # the fixture, used by name


def test_a_replay_made_before_the_dead_letter_is_acked_is_processed(pipeline: Pipeline) -> None:
    # Given a poison application dead-lettered by a batch whose ack still waits for the
    # processor's next reserve
    poison = pipeline.poison()
    pipeline.enqueue(poison)
    processor = pipeline.processor(max_attempts=1)
    asyncio.run(processor.process_batch())
    assert pipeline.stored(poison.id).status == "dead_lettered"

    # When an operator replays it with a corrected application, and the processor goes on
    corrected = decode_application(msgspec.json.encode(sample_application(external_id="fixed")))
    review = ManualReview(pipeline.store, pipeline.broker, pipeline.cipher)
    asyncio.run(review.replay(poison.id, actor="ops-key", corrected=corrected))
    drain(processor)

    # Then the correction is processed and stored, and nothing is left behind
    assert pipeline.stored(poison.id).status == "stored"
    assert pipeline.stored(poison.id).external_id == "fixed"
    assert pipeline.depth() == 0


@pytest.fixture
def short_lease(tmp_path: Path) -> Iterator[Pipeline]:
    """A pipeline whose broker hands out again what a processor held for 50 ms."""
    p = Pipeline(tmp_path)
    p.broker = SQLiteBroker(tmp_path / "broker.db", visibility_timeout_s=0.05)
    p.open()
    yield p
    p.close()


def test_a_discarded_dead_letter_stays_discarded_when_its_unacked_delivery_fails_again(
    short_lease: Pipeline,
) -> None:
    # Given a poison application dead-lettered by a processor that died before its ack
    poison = short_lease.poison()
    short_lease.enqueue(poison)
    asyncio.run(short_lease.processor(max_attempts=1).process_batch())
    # and an operator who discarded the dead letter meanwhile
    review = ManualReview(short_lease.store, short_lease.broker, short_lease.cipher)
    asyncio.run(review.discard(poison.id, actor="ops-key", reason="test data"))

    # When the broker hands the delivery out again and it fails once more
    deadline = time.monotonic() + WAIT_LIMIT_S
    while short_lease.depth():
        assert time.monotonic() < deadline, "the delivery was not handed out again"
        drain(short_lease.processor(max_attempts=1))

    # Then the letter and its application stay discarded, as the operator left them
    letter = asyncio.run(short_lease.store.get_dead_letter(poison.id))
    assert letter is not None
    assert (letter.status, letter.resolution) == ("discarded", "test data")
    assert short_lease.stored(poison.id).status == "discarded"
