"""The store contract's search (store/search.py), for every backend of test_contract.py:
filters, pages, and the index each filter's query is served by."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from typing import Any

import asyncpg
import msgspec
import pytest

from loanflow.store import export
from loanflow.store.base import ApplicationRecord, Store
from loanflow.store.search import (
    ApplicationFilter,
    Review,
    count_sql,
    decode_cursor,
    encode_cursor,
    select_sql,
)
from tests.store import test_contract as contract
from tests.store.test_contract import StoreFactory, record, run, save

# The contract's fixtures: each backend, a fresh store per test.
event_loop_runner = contract.event_loop_runner
postgres_database = contract.postgres_database
store_factory = contract.store_factory
store = contract.store

SECOND_NS = 1_000_000_000
DOCUMENT = msgspec.json.encode({
    "application": {"applicant": {"ssn": "***-**-6789"}},
    "assessment": {"enrichment": {"score": 712, "risk_tier": "B", "route": "manual_review",
                                  "flags": ["duplicate_ssn_24h"], "trace": [{"x": 1}]}},
})


def at(second: int, **changes: Any) -> ApplicationRecord:
    """A stored record received `second` seconds into the test's time line."""
    fields: dict[str, Any] = {"document": DOCUMENT, **changes}
    return record(received_at_ns=1_800_000_000 * SECOND_NS + second * SECOND_NS, **fields)


def ids(store: Store, *, limit: int = 100, **where: Any) -> list[str]:
    found, _ = run(store.search_applications(ApplicationFilter(**where), limit=limit))
    return [s.id for s in found]


def every_page(store: Store, where: ApplicationFilter, limit: int) -> list[str]:
    seen, cursor = [], None
    while True:
        found, cursor = run(store.search_applications(where, limit=limit, cursor=cursor))
        seen += [s.id for s in found]
        if cursor is None:
            return seen


def newest_first(*records: ApplicationRecord) -> list[str]:
    return [r.id for r in sorted(records, key=lambda r: (r.received_at_ns, r.id), reverse=True)]


def test_search_lists_newest_first_in_pages_without_repeats(store: Store) -> None:
    saved = [at(n) for n in (3, 1, 4, 1, 5, 9, 2)]  # two received in the same second
    save(store, *saved)

    first, cursor = run(store.search_applications(ApplicationFilter(), limit=3))

    assert [s.id for s in first] == newest_first(*saved)[:3]
    assert cursor is not None
    assert every_page(store, ApplicationFilter(), limit=3) == newest_first(*saved)


def test_a_summary_shows_score_tier_flags_and_no_pii(store: Store) -> None:
    saved = at(1, route="manual_review")
    save(store, saved)

    [summary] = run(store.search_applications(ApplicationFilter(), limit=1))[0]

    assert (summary.id, summary.status, summary.route, summary.channel) == (
        saved.id, "stored", "manual_review", saved.channel)
    assert (summary.partner_id, summary.external_id) == (saved.partner_id, saved.external_id)
    assert (summary.received_at_ns, summary.processed_at_ns) == (
        saved.received_at_ns, saved.processed_at_ns)
    assert (summary.score, summary.risk_tier, summary.flags) == (712, "B", ("duplicate_ssn_24h",))
    assert (summary.review_decision, summary.reviewed_at_ns) == (None, None)
    assert "6789" not in repr(summary)


def test_a_rejected_or_dead_lettered_application_lists_without_score(store: Store) -> None:
    rejected = at(1, status="rejected", route=None,
                  document=b'{"assessment":{"violations":[],"enrichment":null}}')
    dead = at(2, status="dead_lettered", route=None, document=b'{"attempts":[]}')
    save(store, rejected, dead)

    found, _ = run(store.search_applications(ApplicationFilter(), limit=10))

    assert [(s.status, s.score, s.risk_tier, s.flags) for s in found] == [
        ("dead_lettered", None, None, ()), ("rejected", None, None, ())]


def test_each_filter_narrows_the_search(store: Store) -> None:
    web = at(1, channel="web", partner_id=None, external_id="crm-1", route="fast_track")
    broker = at(2, channel="broker", partner_id="p-9", external_id=None,
                route="manual_review")
    rejected = at(3, channel="web", status="rejected", route=None, partner_id=None,
                  external_id="crm-2")
    declined = at(4, route="decline_recommended", partner_id="p-1", external_id="crm-1")
    save(store, web, broker, rejected, declined)

    assert ids(store, status="rejected") == [rejected.id]
    assert ids(store, status="stored") == newest_first(web, broker, declined)
    assert ids(store, route="manual_review") == [broker.id]
    assert ids(store, route="fast_track") == [web.id]
    assert ids(store, channel="web") == newest_first(web, rejected)
    assert ids(store, partner_id="p-9") == [broker.id]
    assert ids(store, external_id="crm-1") == newest_first(web, declined)
    assert ids(store, since_ns=broker.received_at_ns) == newest_first(broker, rejected, declined)
    assert ids(store, until_ns=broker.received_at_ns) == [web.id]
    assert ids(store, since_ns=broker.received_at_ns, until_ns=declined.received_at_ns,
               channel="web") == [rejected.id]
    assert ids(store, channel="branch") == []


def test_review_open_is_manual_review_without_a_decision(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    waiting = at(1, route="manual_review")
    decided = at(2, route="manual_review")
    fast = at(3, route="fast_track")
    save(store, waiting, decided, fast)
    # The review queue (not built yet) records decisions in these columns.
    store_factory.execute("UPDATE applications SET review_decision = 'approve',"
                          f" reviewed_at_ns = 5 WHERE id = '{decided.id}'")

    assert ids(store, review=Review.OPEN) == [waiting.id]
    assert ids(store, review=Review.DECIDED) == [decided.id]
    [summary] = run(store.search_applications(ApplicationFilter(review=Review.DECIDED),
                                              limit=1))[0]
    assert (summary.review_decision, summary.reviewed_at_ns) == ("approve", 5)


def test_pages_neither_repeat_nor_miss_rows_while_applications_arrive(store: Store) -> None:
    # Given ten applications and the first page of a search
    before = [at(n * 10) for n in range(10)]
    save(store, *before)
    first, cursor = run(store.search_applications(ApplicationFilter(), limit=4))
    seen = [s.id for s in first]

    # When newer ones arrive, and one received earlier is stored late, between pages
    newer = [at(200 + n) for n in range(5)]
    late = at(5)
    save(store, *newer, late)
    while cursor is not None:
        found, cursor = run(store.search_applications(ApplicationFilter(), limit=4,
                                                      cursor=cursor))
        seen += [s.id for s in found]

    # Then every application of the first page's time is listed once, in order, and the
    # late one too; the newer ones belong to a new search
    assert seen == newest_first(*before, late)


def test_a_cursor_not_made_by_the_store_is_refused(store: Store) -> None:
    for cursor in ("", "not-a-cursor", "MTIz", "OTk5OTk5OTk5OTk5OTk5OTk5OTkuYQ", "²"):
        with pytest.raises(ValueError, match="previous page"):
            run(store.search_applications(ApplicationFilter(), limit=5, cursor=cursor))


def test_a_cursor_reads_back_the_position_it_was_made_from(store: Store) -> None:
    saved = [at(1), at(2)]
    save(store, *saved)

    _, cursor = run(store.search_applications(ApplicationFilter(), limit=1))

    assert cursor is not None
    assert decode_cursor(cursor) == (saved[1].received_at_ns, saved[1].id)


# -- the export's reads: a bounded count, pages with documents --------------------------


def test_count_applications_counts_the_matches_up_to_its_bound(store: Store) -> None:
    save(store, *[at(n, channel="web" if n % 3 else "broker") for n in range(9)])

    def count(at_most: int, **where: Any) -> int:
        return run(store.count_applications(ApplicationFilter(**where), at_most=at_most))

    assert (count(100), count(100, channel="broker"), count(100, channel="phone")) == (9, 3, 0)
    assert (count(4), count(9), count(2, channel="broker")) == (4, 9, 2)


def test_export_pages_are_the_searchs_with_documents_and_review_columns(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    saved = [at(n, route="manual_review") for n in (3, 1, 4, 1, 5, 9, 2)]
    save(store, *saved)
    store_factory.execute("UPDATE applications SET review_decision = 'decline', review_reason"
                          f" = 'stubs', reviewed_by = 'k9', reviewed_at_ns = 77 WHERE id ="
                          f" '{saved[0].id}'")

    rows, cursor = run(store.export_applications(ApplicationFilter(), limit=3))
    while cursor is not None:
        more, cursor = run(store.export_applications(ApplicationFilter(), limit=3,
                                                     cursor=cursor))
        rows += more

    assert [r.id for r in rows] == newest_first(*saved)
    assert {msgspec.json.decode(r.document) == msgspec.json.decode(DOCUMENT) for r in rows} == {
        True}
    [decided] = [r for r in rows if r.id == saved[0].id]
    assert (decided.review_decision, decided.review_reason, decided.reviewed_by,
            decided.reviewed_at_ns, decided.route) == ("decline", "stubs", "k9", 77,
                                                       "manual_review")


# -- every filter is served by its index ------------------------------------------------

#: The filter, and the index migration 0008 says serves it.
SERVED_BY = [
    ({}, "applications_time"),
    ({"since_ns": 1}, "applications_time"),
    ({"until_ns": 2**62}, "applications_time"),
    ({"status": "rejected"}, "applications_status"),
    ({"route": "decline_recommended"}, "applications_route"),
    ({"channel": "branch"}, "applications_channel"),
    ({"partner_id": "p-3"}, "applications_partner"),
    ({"external_id": "crm-7"}, "applications_external"),
    ({"review": Review.OPEN}, "applications_review_open"),
    ({"review": Review.DECIDED}, "applications_review_decided"),
    ({"status": "rejected", "since_ns": 1, "until_ns": 2**62}, "applications_status"),
]


def explain(factory: StoreFactory, sql: str, params: list[object]) -> str:
    """The plan the backend makes for the query: SQLite's EXPLAIN QUERY PLAN, PostgreSQL's
    EXPLAIN (FORMAT JSON) with sequential scans priced out (the table is small)."""
    if factory.backend == "sqlite":
        with sqlite3.connect(factory.tmp_path / "store.db") as conn:
            rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
        return "\n".join(str(row[-1]) for row in rows)

    async def plan() -> str:
        conn = await asyncpg.connect(factory.postgres_url)
        try:
            await conn.execute("ANALYZE applications")
            await conn.execute("SET enable_seqscan = off")
            return str(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *params))
        finally:
            await conn.close()

    return asyncio.run(plan())


def indexes_used(backend: str, plan: str) -> set[str]:
    if backend == "sqlite":
        return set(re.findall(r"USING (?:COVERING )?INDEX (\w+)", plan))
    used: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        if node["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Index Scan"):
            used.add(node["Index Name"])
        for child in node.get("Plans", ()):
            walk(child)

    walk(msgspec.json.decode(plan)[0]["Plan"])
    return used


def test_each_filter_is_served_by_its_index(store_factory: StoreFactory) -> None:
    # Given a table where each searched value is rare (one row in 20), as the planners
    # must see it to prefer its index over reading the newest rows and filtering them
    store = store_factory()
    kinds = {0: {"status": "rejected", "route": None}, 1: {"route": "decline_recommended"},
             2: {"route": "manual_review"}, 3: {"route": "manual_review"},
             4: {"channel": "branch"}, 5: {"partner_id": "p-3"}}
    rows = [at(n, **{"route": "fast_track", "channel": "web", "partner_id": None,
                     "external_id": f"crm-{n}", **kinds.get(n % 20, {})})
            for n in range(4_000)]
    save(store, *rows)
    decided = ", ".join(f"'{r.id}'" for n, r in enumerate(rows) if n % 20 == 3)
    store_factory.execute("UPDATE applications SET review_decision = 'decline',"
                          f" reviewed_at_ns = 1 WHERE id IN ({decided})")
    placeholder = (lambda n: "?") if store_factory.backend == "sqlite" else (lambda n: f"${n}")

    # When the search's own query for each filter is planned, for a first and a later page
    served = {}
    for where, _ in SERVED_BY:
        for cursor in (None, encode_cursor(rows[3_000].received_at_ns, rows[3_000].id)):
            sql, params = select_sql(ApplicationFilter(**where), cursor, 50, placeholder)
            plan = explain(store_factory, sql, params)
            served[repr(where), cursor is None] = indexes_used(store_factory.backend, plan)

    # Then each reads the index migration 0008 names for it, and no other
    assert served == {(repr(where), first): {index}
                      for where, index in SERVED_BY for first in (True, False)}


def test_the_exports_count_and_pages_use_the_searchs_index(store_factory: StoreFactory) -> None:
    # Given the table of the test above, each searched value rare
    store = store_factory()
    kinds = {0: {"status": "rejected", "route": None}, 1: {"route": "decline_recommended"},
             2: {"route": "manual_review"}, 3: {"route": "manual_review"},
             4: {"channel": "branch"}, 5: {"partner_id": "p-3"}}
    rows = [at(n, **{"route": "fast_track", "channel": "web", "partner_id": None,
                     "external_id": f"crm-{n}", **kinds.get(n % 20, {})})
            for n in range(4_000)]
    save(store, *rows)
    decided = ", ".join(f"'{r.id}'" for n, r in enumerate(rows) if n % 20 == 3)
    store_factory.execute("UPDATE applications SET review_decision = 'decline',"
                          f" reviewed_at_ns = 1 WHERE id IN ({decided})")
    placeholder = (lambda n: "?") if store_factory.backend == "sqlite" else (lambda n: f"${n}")

    # When the export's count (bounded by a LIMIT) and page queries are planned
    served = {}
    for where, _ in SERVED_BY:
        filtered = ApplicationFilter(**where)
        for name, (sql, params) in (
                ("count", count_sql(filtered, 100_001, placeholder)),
                ("page", export.select_sql(filtered, None, 500, placeholder))):
            plan = explain(store_factory, sql, params)
            served[repr(where), name] = indexes_used(store_factory.backend, plan)

    # Then each reads the search's index for its filter, and no other
    assert served == {(repr(where), name): {index}
                      for where, index in SERVED_BY for name in ("count", "page")}
