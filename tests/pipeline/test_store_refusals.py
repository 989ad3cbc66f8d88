"""A result the PostgreSQL store refuses for its data (a constraint or data error) is
its application's failed attempt, not an outage: its batch neighbours are stored.

The refusal is a real PostgreSQL error (check_violation, SQLSTATE 23514) from a
constraint this test adds to its throwaway database: applications whose external_id
starts with `refused-` cannot be stored (their dead-lettered row can)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loanflow.backends.postgres.store import PostgresStore
from loanflow.errors import StoreUnavailable
from loanflow.pipeline.processor import Processor
from loanflow.store.base import StoreRefused
from tests.conftest import sample_application
from tests.pipeline.test_processor import PRODUCT, Pipeline
from tests.store.test_contract import record
from tests.throwaway.postgres import execute_sql, shared_database_fixture

postgres_database = shared_database_fixture()
WAIT_LIMIT_S = 10.0
REFUSE_MARKED = (
    "ALTER TABLE applications ADD CONSTRAINT test_refuses_marked CHECK"
    " (status = 'dead_lettered' OR external_id IS NULL OR external_id NOT LIKE 'refused-%')"
)


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    """One event loop for the test: a PostgreSQL pool belongs to the loop that opened it."""
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture
def store(postgres_database: str, runner: asyncio.Runner) -> Iterator[PostgresStore]:
    execute_sql(postgres_database, "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    store = PostgresStore(postgres_database)
    runner.run(store.open())
    execute_sql(postgres_database, REFUSE_MARKED)
    yield store
    runner.run(store.close())


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    """For its SQLite broker, cipher and envelopes; the store is PostgreSQL."""
    p = Pipeline(tmp_path)
    asyncio.run(p.broker.open())
    yield p
    asyncio.run(p.broker.close())


def test_a_batch_the_server_refuses_for_its_data_is_refused_not_unavailable(
    store: PostgresStore, runner: asyncio.Runner
) -> None:
    good, bad = record(external_id="fine"), record(external_id="refused-1")

    with pytest.raises(StoreRefused) as refused:
        runner.run(store.save_results([good, bad]))

    assert not isinstance(refused.value, StoreUnavailable)
    assert "23514" in str(refused.value) and "refused-1" not in str(refused.value)
    assert runner.run(store.get_application(good.id)) is None  # one transaction


def test_a_refused_result_is_a_failed_attempt_and_its_neighbours_are_stored(
    store: PostgresStore, runner: asyncio.Runner, pipeline: Pipeline
) -> None:
    # Given a batch of five whose fourth result the store refuses
    external_ids = ["n-0", "n-1", "n-2", "refused-1", "n-4"]
    batch = [pipeline.submit(sample_application(external_id=e)) for e in external_ids]
    bad = batch[3]
    processor = Processor(pipeline.broker, store, cipher=pipeline.cipher, product=PRODUCT,
                          name="refusals", max_attempts=2)

    # When a processor takes it
    runner.run(processor.process_batch())
    runner.run(processor.ack_committed())

    # Then the neighbours are stored, and the refused one waits for its retry
    for envelope in batch:
        found = runner.run(store.get_application(envelope.id))
        assert (found.status if found else None) == (None if envelope is bad else "stored")
    assert pipeline.depth() == 1

    # And after its last attempt it is dead-lettered with the store's refusal
    deadline = time.monotonic() + WAIT_LIMIT_S
    while (letter := runner.run(store.get_dead_letter(bad.id))) is None:
        assert time.monotonic() < deadline, "not dead-lettered in time"
        runner.run(processor.process_batch())
        time.sleep(0.02)
    runner.run(processor.ack_committed())
    assert [a.error_code for a in letter.attempts] == ["StoreRefused", "StoreRefused"]
    assert runner.run(store.get_application(bad.id)).status == "dead_lettered"  # type: ignore[union-attr]
    assert pipeline.depth() == 0
