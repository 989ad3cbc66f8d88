"""PostgresStore: the Store contract, the JSON document, and behaviour under server faults."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import msgspec
import pytest

from loanflow.apikeys import ApiKey, Scope
from loanflow.backends.postgres.store import CLIENT_MARGIN_S, PLAN_LIFETIME_S, PostgresStore
from loanflow.errors import InvalidValue, StoreUnavailable
from loanflow.store import migrations
from loanflow.store.base import ApplicationRecord, StoreRefused
from loanflow.store.review import DeadLetterFilter, DeadLetterStatus
from tests.store.test_contract import dead
from tests.throwaway.postgres import (
    PostgresServer,
    admin_url,
    fresh_database,
    postgres_server_fixture,
    shared_database_fixture,
)

database_url = shared_database_fixture()
postgres_server = postgres_server_fixture()

#: Short timeouts for the fault tests: a call must give up in about this long.
SHORT_TIMEOUT_S = 1.0
GIVE_UP_WITHIN_S = SHORT_TIMEOUT_S + CLIENT_MARGIN_S + 1.0


def record(**changes: Any) -> ApplicationRecord:
    """A stored application with every optional field set."""
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "status": "stored",
        "api_key_id": "k1",
        "idempotency_key": str(uuid.uuid4()),
        "channel": "web",
        "partner_id": "partner-7",
        "external_id": "crm-000123",
        "received_at_ns": 1_780_000_000_123_456_789,
        "processed_at_ns": 1_780_000_000_223_456_789,
        "ssn_hash": "a" * 64,
        "pii_sealed": bytes(range(256)),
        "document": msgspec.json.encode(
            {"application": {"channel": "web", "loan": {"amount": 15000.5}},
             "assessment": {"reasons": ["r1", "r2"], "tier": "B"}}
        ),
        "rules_version": "rules-3",
        "product_version": "product-2026-01",
    }
    fields.update(changes)
    return ApplicationRecord(**fields)


def assert_stored(got: ApplicationRecord | None, want: ApplicationRecord) -> None:
    """Equal, the document compared as JSON (the contract promises meaning, not bytes)."""
    assert got is not None
    assert msgspec.json.decode(got.document) == msgspec.json.decode(want.document)
    assert msgspec.structs.replace(got, document=want.document) == want


def run(url: str, scenario: Callable[[PostgresStore], Awaitable[None]], **options: Any) -> None:
    """Open a store on `url`, run `scenario` with it, close it: one event loop per test."""
    async def main() -> None:
        async with opened(url, **options) as store:
            await scenario(store)

    asyncio.run(main())


@contextlib.asynccontextmanager
async def opened(url: str, **options: Any) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(url, **options)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def fetch(url: str, sql: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return list(await conn.fetch(sql, *args, timeout=5))
    finally:
        await conn.close(timeout=5)


@pytest.fixture
def url(database_url: str) -> Iterator[str]:
    """The module's database, migrated and empty for each test."""
    async def empty() -> None:
        async with opened(database_url):
            pass
        await fetch(database_url, "TRUNCATE applications, api_keys")

    asyncio.run(empty())
    yield database_url


# -- applications ---------------------------------------------------------------------------


def test_every_field_round_trips(url: str) -> None:
    full = record()
    sparse = record(partner_id=None, external_id=None, ssn_hash=None, pii_sealed=None,
                    document=b"{}")

    async def scenario(store: PostgresStore) -> None:
        await store.save_results([full, sparse])
        assert_stored(await store.get_application(full.id), full)
        assert_stored(await store.get_application(sparse.id), sparse)

    run(url, scenario)


def test_unknown_id_is_none(url: str) -> None:
    async def scenario(store: PostgresStore) -> None:
        assert await store.get_application("no-such-id") is None
        assert await store.get_application("nul\x00id") is None

    run(url, scenario)


def test_saving_an_id_again_keeps_the_first(url: str) -> None:
    first, other = record(), record()

    async def scenario(store: PostgresStore) -> None:
        await store.save_results([first])
        await store.save_results([msgspec.structs.replace(first, status="rejected")])
        assert_stored(await store.get_application(first.id), first)
        # Within one batch too: a redelivered message may sit beside itself.
        await store.save_results([other, msgspec.structs.replace(other, status="rejected")])
        assert_stored(await store.get_application(other.id), other)

    run(url, scenario)


def test_a_batch_is_one_transaction(url: str) -> None:
    good, bad = record(), record(document=b"not json")

    async def scenario(store: PostgresStore) -> None:
        with pytest.raises(StoreRefused):  # a data error: the batch's own fault
            await store.save_results([good, bad])
        assert await store.get_application(good.id) is None
        await store.save_results([good])  # and the connection is still usable
        assert_stored(await store.get_application(good.id), good)

    run(url, scenario)


def test_a_batch_with_dead_letters_is_one_transaction(url: str) -> None:
    good, bad = record(), record(document=b"not json")
    dead_row, letter = dead()

    async def scenario(store: PostgresStore) -> None:
        with pytest.raises(StoreRefused):  # a data error: the batch's own fault
            await store.save_results([good, dead_row, bad], [letter])
        assert await store.get_application(good.id) is None
        assert await store.get_dead_letter(letter.id) is None
        await store.save_results([good, dead_row], [letter])
        assert_stored(await store.get_application(good.id), good)
        assert await store.get_dead_letter(letter.id) == letter

    run(url, scenario)


def test_a_connection_goes_back_to_the_pool_clean_without_a_reset_round_trip(url: str) -> None:
    good, bad = record(), record(document=b"not json")

    async def last_statement() -> str:
        [row] = await fetch(url, "SELECT query FROM pg_stat_activity WHERE datname ="
                                 " current_database() AND application_name = 'loanflow'")
        return str(row["query"])

    async def scenario(store: PostgresStore) -> None:  # one pooled connection throughout
        with pytest.raises(StoreRefused):  # a data error: the batch's own fault
            await store.save_results([good, bad])
        await store.save_results([good])  # the failed transaction was rolled back
        # The batch's own INSERT was the last statement, not asyncpg's RESET ALL after it.
        assert (await last_statement()).startswith("INSERT INTO applications")
        assert_stored(await store.get_application(good.id), good)

    run(url, scenario, min_pool=1, max_pool=1)


def test_the_ssn_lookup_still_uses_its_index_after_the_table_grew(database_url: str) -> None:
    """A plan made while the table was a few rows long must not outlive its growth by more
    than PLAN_LIFETIME_S: as a cached generic plan it was a sequential scan, every row
    read for every batch. Nor may a batch's many hashes on a table never analyzed: the
    planner's default guess took them to match most rows."""
    lookups_while_small = 8  # past PostgreSQL's five custom plans before a generic one

    async def scans(store: PostgresStore, url: str) -> tuple[int, int]:
        """(sequential scans of applications, scans of its SSN index) so far."""
        # A backend reports its counts at the end of a transaction at most once a second.
        await asyncio.sleep(1.1)
        await store.ping()
        [row] = await fetch(url, "SELECT t.seq_scan, i.idx_scan FROM pg_stat_user_tables t"
                                 " JOIN pg_stat_user_indexes i USING (relid)"
                                 " WHERE t.relname = 'applications'"
                                 " AND i.indexrelname = 'applications_ssn'")
        return row["seq_scan"], row["idx_scan"]

    async def scenario(url: str) -> None:
        async with opened(url, min_pool=1, max_pool=1) as store:  # one connection throughout
            # No ANALYZE while the test runs: it would invalidate a stale plan at random.
            await fetch(url, "ALTER TABLE applications SET (autovacuum_enabled = false)")
            await store.save_results([record(ssn_hash=f"{n:064x}") for n in range(3)])
            for n in range(lookups_while_small):  # as the processor asks: a batch at a time
                await store.ssn_matches([f"{n * 10 + k:064x}" for k in range(8)], since_ns=0)
            await fetch(url, "INSERT INTO applications SELECT 'grown-' || n, 'stored', 'k1',"
                             " 'key-' || n, 'web', NULL, NULL, n, n, md5(n::text), NULL, '{}',"
                             " 'r', 'p' FROM generate_series(1, 20000) AS n")
            await asyncio.sleep(PLAN_LIFETIME_S)
            seq_before, index_before = await scans(store, url)
            batch = [f"{1:064x}", *(f"{n:064x}" for n in range(10**6, 10**6 + 199))]
            found = await store.ssn_matches(batch, since_ns=0)
            seq_after, index_after = await scans(store, url)
        assert [ssn_hash for ssn_hash, _ in found] == [f"{1:064x}"]
        assert seq_after - seq_before == 0
        assert index_after > index_before

    with fresh_database(admin_url(database_url)) as fresh_url:
        asyncio.run(scenario(fresh_url))


def test_an_empty_batch_writes_nothing(url: str) -> None:
    async def scenario(store: PostgresStore) -> None:
        await store.save_results([])
        assert await fetch(url, "SELECT id FROM applications") == []

    run(url, scenario)


def test_overlapping_batches_saved_at_once_do_not_deadlock(url: str) -> None:
    records = [record() for _ in range(200)]

    async def scenario(one: PostgresStore) -> None:
        async with opened(url) as two:
            # Opposite orders: unsorted, each would wait on a row the other holds.
            await asyncio.gather(*(
                store.save_results(batch)
                for _ in range(5)
                for store, batch in ((one, records), (two, records[::-1]))
            ))
        rows = await fetch(url, "SELECT count(*) AS n FROM applications")
        assert rows[0]["n"] == len(records)

    run(url, scenario)


def test_nul_in_free_text_is_stored_as_replacement_character(url: str) -> None:
    # PostgreSQL text cannot hold NUL (nor can JSON's ->> give it back); refusing it
    # would stall the pipeline.
    rec = record(external_id="crm\x00x",
                 document=msgspec.json.encode({"application": {"employer_name": "Ac\x00me"}}))

    async def scenario(store: PostgresStore) -> None:
        await store.save_results([rec])
        got = await store.get_application(rec.id)
        assert got is not None and got.external_id == "crm\ufffdx"
        assert msgspec.json.decode(got.document) == {"application": {"employer_name": "Ac\ufffdme"}}

    run(url, scenario)


def test_document_is_queryable_as_json(url: str) -> None:
    web = record()
    phone = record(document=msgspec.json.encode({"application": {"channel": "phone"}}))

    async def scenario(store: PostgresStore) -> None:
        await store.save_results([web, phone])
        rows = await fetch(
            url,
            "SELECT id, json_typeof(document) AS kind,"
            " (document->'application'->'loan'->>'amount')::numeric AS amount"
            " FROM applications WHERE document->'application'->>'channel' = $1",
            "web",
        )
        assert [(r["id"], r["kind"], float(r["amount"])) for r in rows] == [
            (web.id, "object", 15000.5)
        ]

    run(url, scenario)


# -- migrations -----------------------------------------------------------------------------


def test_migrations_are_applied_once(url: str) -> None:
    async def scenario(store: PostgresStore) -> None:
        # The url fixture opened a store on this database before; this is the second.
        rows = await fetch(url, "SELECT version, name FROM schema_migrations ORDER BY version")
        assert [(r["version"], r["name"]) for r in rows] == [
            (m.version, m.name) for m in migrations.load("postgres")
        ]

    run(url, scenario)


def test_documents_stored_as_jsonb_before_migration_6_read_back_after_it(
    database_url: str,
) -> None:
    before = [m for m in migrations.load("postgres") if m.version < 6]
    rec = record()

    async def scenario(fresh_url: str) -> None:
        # Given a database at the schema of migration 5, with a row written then,
        conn = await asyncpg.connect(fresh_url, timeout=5)
        try:
            await conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
                               " name TEXT NOT NULL, applied_at_ns BIGINT NOT NULL)")
            for m in before:
                await conn.execute(m.sql)
                await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2, 0)",
                                   m.version, m.name)
            await conn.execute(
                "INSERT INTO applications (id, status, api_key_id, idempotency_key, channel,"
                " received_at_ns, processed_at_ns, document, rules_version, product_version)"
                " VALUES ($1, 'stored', 'k', 'i', 'web', 1, 2, $2::text::jsonb, 'r', 'p')",
                rec.id, rec.document.decode())
            assert await conn.fetchval("SELECT pg_typeof(document)::text FROM applications"
                                       ) == "jsonb"
        finally:
            await conn.close(timeout=5)
        # when a store opens it, the column becomes JSON and the row reads back equal.
        async with opened(fresh_url) as store:
            got = await store.get_application(rec.id)
            assert got is not None
            assert msgspec.json.decode(got.document) == msgspec.json.decode(rec.document)
            await store.save_results([record(id="app_after")])
        rows = await fetch(fresh_url, "SELECT pg_typeof(document)::text AS kind,"
                           " document->'application'->>'channel' AS channel FROM applications")
        assert {(r["kind"], r["channel"]) for r in rows} == {("json", "web")}
        [column] = await fetch(
            fresh_url, "SELECT a.attcompression::text AS method, 'lz4' = ANY (s.enumvals)"
            " AS has_lz4 FROM pg_attribute a, pg_settings s WHERE s.name ="
            " 'default_toast_compression' AND a.attrelid = 'applications'::regclass"
            " AND a.attname = 'document'")
        assert column["method"] == ("l" if column["has_lz4"] else "")

    with fresh_database(admin_url(database_url)) as fresh_url:
        asyncio.run(scenario(fresh_url))


def test_four_stores_opening_at_once_on_a_fresh_database_migrate_once(database_url: str) -> None:
    async def scenario(fresh_url: str) -> None:
        stores = [PostgresStore(fresh_url) for _ in range(4)]
        try:
            await asyncio.gather(*(s.open() for s in stores))
            await stores[0].save_results([record()])
        finally:
            await asyncio.gather(*(s.close() for s in stores))
        rows = await fetch(fresh_url, "SELECT count(*) AS n FROM schema_migrations")
        assert rows[0]["n"] == len(migrations.load("postgres"))

    with fresh_database(admin_url(database_url)) as fresh_url:
        asyncio.run(scenario(fresh_url))


# -- API keys -------------------------------------------------------------------------------


def test_api_keys_are_created_found_listed_and_revoked(url: str) -> None:
    scopes = frozenset({Scope.SUBMIT, Scope.READ})
    older = ApiKey(id="k-old", label="old", scopes=scopes, created_at_ns=1_000,
                   expires_at_ns=9_000)
    newer = ApiKey(id="k-new", label="new", scopes=frozenset({Scope.ADMIN}), created_at_ns=2_000)

    async def scenario(store: PostgresStore) -> None:
        await store.create_api_key(newer, "hash-new", actor="test")
        await store.create_api_key(older, "hash-old", actor="test")
        assert await store.find_api_key("hash-old") == older
        assert await store.find_api_key("no-such-hash") is None
        assert await store.list_api_keys() == [older, newer]  # oldest first

        assert await store.revoke_api_key("k-new", 5_000, actor="test") is True
        assert await store.revoke_api_key("k-new", 6_000, actor="test") is False  # the first stays
        assert await store.revoke_api_key("no-such-key", 5_000, actor="test") is False
        revoked = msgspec.structs.replace(newer, revoked_at_ns=5_000)
        assert await store.find_api_key("hash-new") == revoked

    run(url, scenario)


# -- connections and faults -----------------------------------------------------------------


# -- values a request brings ---------------------------------------------------------------


def test_a_nul_in_a_dead_letter_filter_is_an_invalid_value_not_an_outage(url: str) -> None:
    async def scenario(store: PostgresStore) -> None:
        with pytest.raises(InvalidValue, match="NUL"):
            await store.list_dead_letters(DeadLetterFilter(external_id="a\x00b"), limit=10)
        with pytest.raises(InvalidValue):
            await store.count_dead_letters(DeadLetterFilter(channel="\x00"))
        await store.ping()  # and the connection it came on is still good

    run(url, scenario, max_pool=1)


def test_a_number_past_64_bits_from_a_request_is_an_invalid_value(url: str) -> None:
    async def scenario(store: PostgresStore) -> None:
        with pytest.raises(InvalidValue, match="out of range"):
            await store.audit_trail(limit=10, before_seq=10**30)
        with pytest.raises(InvalidValue, match="out of range"):
            await store.list_dead_letters(DeadLetterFilter(since_ns=10**30), limit=10)
        await store.ping()

    run(url, scenario, max_pool=1)


def test_a_nul_in_a_discard_reason_is_an_invalid_value_and_changes_nothing(url: str) -> None:
    app, letter = dead()

    async def scenario(store: PostgresStore) -> None:
        await store.save_results([app], [letter])
        with pytest.raises(InvalidValue):
            await store.resolve_dead_letter(
                letter.id, seen_dead_lettered_at_ns=letter.dead_lettered_at_ns,
                status=DeadLetterStatus.DISCARDED, actor="ops", at_ns=time.time_ns(),
                reason="dup\x00licate", detail={},
            )
        found = await store.get_dead_letter(letter.id)
        assert found is not None and found.status == "open"

    run(url, scenario)


def test_repr_never_shows_the_password() -> None:
    for url in ("postgresql://app:s3cret@db.internal:5432/loanflow",
                "postgresql://db.internal/loanflow?user=app&password=s3cret"):
        shown = repr(PostgresStore(url))
        assert "s3cret" not in shown and "db.internal" in shown
    assert "s3cret" not in repr(PostgresStore("host=db.internal password=s3cret"))


def test_use_before_open_is_unavailable() -> None:
    with pytest.raises(StoreUnavailable):
        asyncio.run(PostgresStore("postgresql://127.0.0.1:1/x").ping())


def test_a_statement_over_the_timeout_is_cancelled_by_the_server(url: str) -> None:
    rec = record()

    async def scenario(store: PostgresStore) -> None:
        blocker = await asyncpg.connect(url, timeout=5)
        try:
            # Given another session holding an uncommitted row with the same id,
            held = blocker.transaction()
            await held.start()
            await blocker.execute(
                "INSERT INTO applications (id, status, api_key_id, idempotency_key, channel,"
                " received_at_ns, processed_at_ns, document, rules_version, product_version)"
                " VALUES ($1, 'stored', 'k', 'i', 'web', 0, 0, '{}', '', '')",
                rec.id,
            )
            # when our insert waits on it, the server cancels it at statement_timeout
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="QueryCanceled"):
                await store.save_results([rec])
            assert time.monotonic() - started < SHORT_TIMEOUT_S + CLIENT_MARGIN_S
            # and the same store works on once the blocker is gone.
            await held.rollback()
            await store.save_results([rec])
            assert_stored(await store.get_application(rec.id), rec)
        finally:
            await blocker.close(timeout=5)

    run(url, scenario, statement_timeout_s=SHORT_TIMEOUT_S)


def test_saving_while_the_server_is_stopped_fails_then_works_after_start(
    postgres_server: PostgresServer,
) -> None:
    before, during = record(), record()

    async def scenario(store: PostgresStore) -> None:
        await store.save_results([before])
        postgres_server.stop()
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.save_results([during])
            assert time.monotonic() - started < GIVE_UP_WITHIN_S
        finally:
            postgres_server.start()
        await store.save_results([during])
        for rec in (before, during):
            assert_stored(await store.get_application(rec.id), rec)

    run(postgres_server.url, scenario, statement_timeout_s=SHORT_TIMEOUT_S)


def test_committed_batches_survive_a_server_crash(postgres_server: PostgresServer) -> None:
    committed = [record() for _ in range(50)]

    async def scenario(store: PostgresStore) -> None:
        await store.save_results(committed)
        postgres_server.kill()
        try:
            with pytest.raises(StoreUnavailable):
                await store.ping()
        finally:
            postgres_server.start()  # crash recovery replays the WAL
        for rec in committed:
            assert_stored(await store.get_application(rec.id), rec)

    run(postgres_server.url, scenario, statement_timeout_s=SHORT_TIMEOUT_S)


def test_a_frozen_server_makes_calls_fail_within_the_timeout(
    postgres_server: PostgresServer,
) -> None:
    rec = record()

    async def scenario(store: PostgresStore) -> None:
        await store.ping()
        postgres_server.freeze()
        try:
            # On the pooled connection (command timeout), then on a new one (connect timeout).
            calls: list[Callable[[], Awaitable[None]]] = [
                lambda: store.save_results([rec]), store.ping
            ]
            for call in calls:
                started = time.monotonic()
                with pytest.raises(StoreUnavailable):
                    await call()
                assert time.monotonic() - started < GIVE_UP_WITHIN_S
        finally:
            postgres_server.thaw()
        await store.save_results([rec])
        assert_stored(await store.get_application(rec.id), rec)

    run(postgres_server.url, scenario, statement_timeout_s=SHORT_TIMEOUT_S)
