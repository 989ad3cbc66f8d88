"""A replay from the dead letters always leads to processing again, over a real SQLite
broker and store."""

from __future__ import annotations

import asyncio

import msgspec

from loanflow.api.schema import decode_application
from loanflow.manual_review import ManualReview
from tests.conftest import sample_application
from tests.pipeline.test_processor import Pipeline, drain, pipeline

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
