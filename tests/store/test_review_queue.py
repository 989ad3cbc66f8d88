"""The store contract's business review queue (store/review_queue.py), for every backend
of test_contract.py: the open reviews oldest first, one final decision each, audited,
two racing deciders getting one winner, and the index the queue is read from."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import asyncpg
import msgspec
import pytest

from loanflow.store.base import ApplicationRecord, Store
from loanflow.store.review_queue import Outcome, ReviewDecision, RouteReason, select_sql
from loanflow.store.search import ApplicationFilter, Review, encode_cursor
from tests.store import test_contract as contract
from tests.store.test_contract import StoreFactory, record, run, save
from tests.store.test_search import explain, indexes_used

# The contract's fixtures: each backend, a fresh store per test.
event_loop_runner = contract.event_loop_runner
postgres_database = contract.postgres_database
store_factory = contract.store_factory
store = contract.store

SECOND_NS = 1_000_000_000
REASONS = [{"code": "route.tier.not_fast_track", "message": "risk tier C needs review"},
           {"code": "route.flag.duplicate_ssn_24h", "message": "same SSN in the last 24 h"}]


def document(route: str) -> bytes:
    return msgspec.json.encode({
        "application": {"applicant": {"ssn": "***-**-6789"}},
        "assessment": {"enrichment": {"score": 640, "risk_tier": "C", "route": route,
                                      "route_reasons": REASONS if route == "manual_review"
                                      else [],
                                      "flags": ["duplicate_ssn_24h"], "trace": []}},
    })


def at(second: int, route: str | None = "manual_review", **changes: Any) -> ApplicationRecord:
    """A stored record received `second` seconds into the test's time line."""
    fields: dict[str, Any] = {"route": route, "document": document(route or "none"), **changes}
    return record(received_at_ns=1_800_000_000 * SECOND_NS + second * SECOND_NS, **fields)


def decision(verdict: str = "approve", *, by: str = "key-op", reason: str = "income verified",
             at_ns: int = 1_900_000_000 * SECOND_NS) -> ReviewDecision:
    return ReviewDecision(decision=verdict, reason=reason, reviewed_by=by, reviewed_at_ns=at_ns)


def decide(store: Store, application_id: str,
           made: ReviewDecision) -> tuple[Outcome, ReviewDecision | None]:
    return run(store.decide(application_id, made,
                            detail={"decision": made.decision, "reason": made.reason}))


def queue(store: Store, *, limit: int = 100) -> list[str]:
    seen, cursor = [], None
    while True:
        found, cursor = run(store.list_reviews(limit=limit, cursor=cursor))
        seen += [item.summary.id for item in found]
        if cursor is None:
            return seen


def oldest_first(*records: ApplicationRecord) -> list[str]:
    return [r.id for r in sorted(records, key=lambda r: (r.received_at_ns, r.id))]


def test_the_queue_lists_open_reviews_oldest_first_in_pages(store: Store) -> None:
    waiting = [at(n) for n in (3, 1, 4, 1, 5, 9, 2)]  # two received in the same second
    others = [at(0, route="fast_track"), at(6, route="decline_recommended"),
              at(7, route=None, status="rejected")]
    save(store, *waiting, *others)

    first, cursor = run(store.list_reviews(limit=3))

    assert [item.summary.id for item in first] == oldest_first(*waiting)[:3]
    assert cursor is not None
    assert queue(store, limit=3) == oldest_first(*waiting)
    assert queue(store, limit=7) == oldest_first(*waiting)


def test_an_item_carries_the_summary_flags_and_the_routes_reasons(store: Store) -> None:
    saved = at(1)
    save(store, saved)

    [item] = run(store.list_reviews(limit=5))[0]

    assert (item.summary.id, item.summary.route, item.summary.score,
            item.summary.risk_tier, item.summary.flags) == (
        saved.id, "manual_review", 640, "C", ("duplicate_ssn_24h",))
    assert item.route_reasons == tuple(RouteReason(**r) for r in REASONS)
    # The document's SSN stays out (a random id or a time may hold "6789" by chance).
    assert "***-**-6789" not in repr(item)


def test_a_decision_is_recorded_once_and_audited(store: Store) -> None:
    saved, other = at(1), at(2)
    save(store, saved, other)
    made = decision("decline", reason="stated income not verifiable")

    assert decide(store, saved.id, made) == (Outcome.RECORDED, made)

    assert queue(store) == [other.id]
    found = run(store.get_application(saved.id))
    assert found is not None and found.review == made
    assert found.status == "stored"
    [summary] = run(store.search_applications(ApplicationFilter(review=Review.DECIDED),
                                              limit=5))[0]
    assert (summary.id, summary.review_decision, summary.reviewed_at_ns) == (
        saved.id, "decline", made.reviewed_at_ns)
    [entry] = run(store.audit_trail(limit=5))
    assert (entry.actor, entry.action, entry.target, entry.at_ns, entry.detail) == (
        "key-op", "review", saved.id, made.reviewed_at_ns,
        {"decision": "decline", "reason": "stated income not verifiable"})


def test_a_second_decision_changes_nothing_and_returns_the_first(store: Store) -> None:
    saved = at(1)
    save(store, saved)
    first = decision("approve", by="key-a")
    decide(store, saved.id, first)

    assert decide(store, saved.id, decision("decline", by="key-b")) == (
        Outcome.DECIDED_BEFORE, first)
    assert decide(store, saved.id, first) == (Outcome.DECIDED_BEFORE, first)

    found = run(store.get_application(saved.id))
    assert found is not None and found.review == first
    assert len(run(store.audit_trail(limit=5))) == 1


def test_an_application_outside_the_queue_takes_no_decision(store: Store) -> None:
    fast = at(1, route="fast_track")
    rejected = at(2, route=None, status="rejected")
    save(store, fast, rejected)

    assert decide(store, fast.id, decision()) == (Outcome.NOT_IN_QUEUE, None)
    assert decide(store, rejected.id, decision()) == (Outcome.NOT_IN_QUEUE, None)
    assert decide(store, "no-such-id", decision()) == (Outcome.NOT_STORED, None)
    assert decide(store, "nul\x00id", decision()) == (Outcome.NOT_STORED, None)

    found = run(store.get_application(fast.id))
    assert found is not None and found.review is None
    assert run(store.audit_trail(limit=5)) == []


def test_a_redelivered_result_leaves_the_decision_in_place(store: Store) -> None:
    # The processor's write is idempotent on the id: a redelivery of the batch after the
    # decision (at-least-once delivery) must not erase it.
    saved = at(1)
    save(store, saved)
    made = decision()
    decide(store, saved.id, made)

    save(store, saved)

    found = run(store.get_application(saved.id))
    assert found is not None and found.review == made
    assert queue(store) == []


def test_two_stores_deciding_at_once_make_one_winner(store_factory: StoreFactory) -> None:
    # Given the same application, and two processes' stores deciding on it together
    first, second = store_factory(), store_factory()
    contested = [at(n) for n in range(20)]
    save(first, *contested)

    async def race(application_id: str) -> list[tuple[Outcome, ReviewDecision | None]]:
        return list(await asyncio.gather(
            first.decide(application_id, decision("approve", by="key-a"), detail={}),
            second.decide(application_id, decision("decline", by="key-b"), detail={}),
        ))

    # When they race on each of twenty applications
    results = [run(race(r.id)) for r in contested]

    # Then each time one records its decision and the other is given the winner's
    for (one, one_held), (other, other_held) in results:
        assert sorted([one.value, other.value]) == ["decided_before", "recorded"]
        assert one_held == other_held
    assert len(run(first.audit_trail(limit=100))) == 20


def test_a_decision_waiting_on_another_finds_it_decided(store_factory: StoreFactory) -> None:
    # Given an operator's decision written but not committed yet (a transaction held open)
    store = store_factory()
    saved = at(1)
    save(store, saved)
    winner = decision("decline", by="key-a")

    async def contend() -> tuple[Outcome, ReviewDecision | None]:
        held = HeldDecision(store_factory, saved.id, winner)
        await held.begin()
        try:
            # When another decides meanwhile, it waits for the row, not for nothing
            loser = asyncio.create_task(store.decide(saved.id, decision("approve"), detail={}))
            await asyncio.sleep(0.3)
            assert not loser.done()
        finally:
            await held.commit()
        return await loser

    # Then, once the first commits, the second finds the first's decision
    assert run(contend()) == (Outcome.DECIDED_BEFORE, winner)


class HeldDecision:
    """A decision written by a raw connection in a transaction kept open until `commit`."""

    def __init__(self, factory: StoreFactory, application_id: str, made: ReviewDecision):
        self.factory, self.id, self.made = factory, application_id, made
        self.conn: Any = None

    async def begin(self) -> None:
        values = (self.made.decision, self.made.reason, self.made.reviewed_by,
                  self.made.reviewed_at_ns, self.id)
        if self.factory.backend == "sqlite":
            self.conn = sqlite3.connect(self.factory.tmp_path / "store.db",
                                        isolation_level=None, check_same_thread=False)
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("UPDATE applications SET review_decision = ?, review_reason = ?,"
                              " reviewed_by = ?, reviewed_at_ns = ? WHERE id = ?", values)
            return
        self.conn = await asyncpg.connect(self.factory.postgres_url)
        await self.conn.execute("BEGIN")
        await self.conn.execute("UPDATE applications SET review_decision = $1, review_reason"
                                " = $2, reviewed_by = $3, reviewed_at_ns = $4 WHERE id = $5",
                                *values)

    async def commit(self) -> None:
        if self.factory.backend == "sqlite":
            self.conn.execute("COMMIT")
            self.conn.close()
            return
        await self.conn.execute("COMMIT")
        await self.conn.close()


def test_migration_9_adds_the_decision_columns_to_stored_rows(
    store_factory: StoreFactory,
) -> None:
    # Given a database as release 0008 left it, with one application in review
    store_factory.migrate_before(9)
    store_factory.execute(
        "INSERT INTO applications (id, status, route, api_key_id, idempotency_key, channel,"
        " received_at_ns, processed_at_ns, document, rules_version, product_version)"
        " VALUES ('old', 'stored', 'manual_review', 'k', 'i', 'web', 1, 2,"
        f" '{document('manual_review').decode()}', 'r', 'p')")

    # When the store opens (and migrates)
    store = store_factory()

    # Then the row is in the queue, and takes a decision
    assert queue(store) == ["old"]
    made = decision()
    assert decide(store, "old", made) == (Outcome.RECORDED, made)


@pytest.mark.parametrize("first_page", [True, False], ids=["first-page", "later-page"])
def test_the_queue_is_read_from_its_partial_index(store_factory: StoreFactory,
                                                  first_page: bool) -> None:
    # Given a table where one row in 20 awaits review and as many were decided before
    store = store_factory()
    rows = [at(n, route="manual_review" if n % 20 in (2, 3) else "fast_track")
            for n in range(4_000)]
    save(store, *rows)
    decided = ", ".join(f"'{r.id}'" for n, r in enumerate(rows) if n % 20 == 3)
    store_factory.execute("UPDATE applications SET review_decision = 'approve',"
                          f" reviewed_at_ns = 1 WHERE id IN ({decided})")
    placeholder = (lambda n: "?") if store_factory.backend == "sqlite" else (lambda n: f"${n}")
    cursor = None if first_page else encode_cursor(rows[1_002].received_at_ns, rows[1_002].id)

    sql, params = select_sql(cursor, 50, placeholder)
    plan = explain(store_factory, sql, params)

    assert indexes_used(store_factory.backend, plan) == {"applications_review_open"}
    assert "TEMP B-TREE" not in plan and '"Sort"' not in plan  # no sort step
