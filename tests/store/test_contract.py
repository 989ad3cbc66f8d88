"""The store contract (store/base.py), one suite for every backend.

A new backend joins by adding its name to BACKENDS and a branch to
`StoreFactory._build` that starts from an empty store.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Coroutine, Iterator
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import msgspec
import pytest

from loanflow.apikeys import ApiKey, Scope, generate, hash_key
from loanflow.backends.postgres.store import PostgresStore
from loanflow.backends.sqlite.store import SQLiteStore
from loanflow.backends.sqlite.store import _statements as sqlite_statements
from loanflow.models import AttemptRecord, new_application_id
from loanflow.store import migrations
from loanflow.store.base import ApplicationRecord, Store
from loanflow.store.review import DeadLetter, DeadLetterFilter, DeadLetterStatus
from tests.throwaway.postgres import execute_sql, shared_database_fixture

BACKENDS = ["sqlite", "postgres"]

postgres_database = shared_database_fixture()
T = TypeVar("T")

SECOND_NS = 1_000_000_000

#: One event loop per test: a PostgreSQL pool belongs to the loop that opened it.
_runner: asyncio.Runner | None = None


def run(coro: Coroutine[Any, Any, T]) -> T:
    assert _runner is not None, "the event_loop_runner fixture is not active"
    return _runner.run(coro)


@pytest.fixture(autouse=True)
def event_loop_runner() -> Iterator[None]:
    global _runner
    with asyncio.Runner() as runner:
        _runner = runner
        yield
        _runner = None


class StoreFactory:
    """Opens stores of one backend over the same place; closes them all at the end."""

    def __init__(self, backend: str, tmp_path: Path, postgres_url: str = "") -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.postgres_url = postgres_url
        self._opened: list[Store] = []

    def __call__(self) -> Store:
        store = self._build()
        run(store.open())
        self._opened.append(store)
        return store

    def _build(self) -> Store:
        if self.backend == "sqlite":
            return SQLiteStore(self.tmp_path / "store.db")
        if self.backend == "postgres":
            return PostgresStore(self.postgres_url, statement_timeout_s=5.0)
        raise AssertionError(f"expected a backend among {BACKENDS}, got {self.backend!r}")

    def applied_migrations(self) -> list[int]:
        """Versions recorded in schema_migrations, read straight from the backend."""
        if self.backend == "sqlite":
            with sqlite3.connect(self.tmp_path / "store.db") as conn:
                rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version")
                return [int(version) for (version,) in rows]
        if self.backend == "postgres":

            async def versions() -> list[int]:
                conn = await asyncpg.connect(self.postgres_url)
                try:
                    rows = await conn.fetch(
                        "SELECT version FROM schema_migrations ORDER BY version")
                    return [int(row["version"]) for row in rows]
                finally:
                    await conn.close()

            return run(versions())
        raise AssertionError(f"expected a backend among {BACKENDS}, got {self.backend!r}")

    def execute(self, sql: str) -> None:
        """Raw SQL straight on the backend, past the store (for what it must refuse)."""
        if self.backend == "sqlite":
            with sqlite3.connect(self.tmp_path / "store.db") as conn:
                conn.execute(sql)
            return
        execute_sql(self.postgres_url, sql)

    def migrate_before(self, version: int) -> None:
        """Bring an empty database to the schema of the migrations before `version`,
        as an older release left it."""
        older = [m for m in migrations.load(self.backend) if m.version < version]
        if self.backend == "sqlite":
            with sqlite3.connect(self.tmp_path / "store.db") as conn:
                conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
                             " name TEXT NOT NULL, applied_at_ns INTEGER NOT NULL)")
                for m in older:
                    for statement in sqlite_statements(m.sql):
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)",
                                 (m.version, m.name))
            return
        execute_sql(self.postgres_url, "CREATE TABLE schema_migrations (version INTEGER"
                    " PRIMARY KEY, name TEXT NOT NULL, applied_at_ns BIGINT NOT NULL)")
        for m in older:
            execute_sql(self.postgres_url, m.sql)
            execute_sql(self.postgres_url, "INSERT INTO schema_migrations VALUES"
                        f" ({m.version}, '{m.name}', 0)")

    def migration_files(self) -> list[int]:
        folder = resources.files("loanflow.store") / "migrations" / self.backend
        return sorted(
            int(entry.name.partition("_")[0])
            for entry in folder.iterdir()
            if entry.name.endswith(".sql")
        )

    def close(self, store: Store) -> None:
        run(store.close())
        self._opened.remove(store)

    def close_all(self) -> None:
        for store in list(self._opened):
            self.close(store)


@pytest.fixture(params=BACKENDS)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    postgres_url = ""
    if request.param == "postgres":
        postgres_url = request.getfixturevalue("postgres_database")
        execute_sql(postgres_url, "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    factory = StoreFactory(request.param, tmp_path, postgres_url)
    yield factory
    factory.close_all()


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    return store_factory()


def record(**changes: object) -> ApplicationRecord:
    """A record with every field set to a value that is easy to tell apart."""
    now_ns = time.time_ns()
    base = ApplicationRecord(
        id=new_application_id(now_ns),
        status="stored",
        route="manual_review",
        api_key_id="key-a",
        idempotency_key="idem-1",
        channel="partner_api",
        partner_id="partner-7",
        external_id="crm-000123",
        received_at_ns=now_ns,
        processed_at_ns=now_ns + 12_345_678,
        ssn_hash="ab" * 32,
        pii_sealed=b"\x00\x01sealed\xff",
        document=b'{"application":{"channel":"partner_api"},"assessment":{}}',
        rules_version="2026.1",
        product_version="personal-loan-2026.1",
    )
    return msgspec.structs.replace(base, **changes)


def save(store: Store, *records: ApplicationRecord) -> None:
    run(store.save_results(records))


def get(store: Store, application_id: str) -> ApplicationRecord | None:
    """The stored record, its document as compact JSON with sorted keys.

    The contract promises the document back as equal JSON, not the same bytes
    (PostgreSQL's JSONB reorders keys and spacing); `record()` writes it sorted.
    """
    found = run(store.get_application(application_id))
    if found is None:
        return None
    document = msgspec.json.encode(msgspec.json.decode(found.document), order="sorted")
    return msgspec.structs.replace(found, document=document)


# -- applications ---------------------------------------------------------------------


def test_saved_record_reads_back_with_every_field(store: Store) -> None:
    saved = record()

    save(store, saved)

    assert get(store, saved.id) == saved


def test_saved_record_with_empty_optional_fields_reads_back_as_none(store: Store) -> None:
    saved = record(
        status="dead_lettered", route=None, partner_id=None, external_id=None, ssn_hash=None,
        pii_sealed=None,
    )

    save(store, saved)

    assert get(store, saved.id) == saved


def test_unknown_id_reads_as_none(store: Store) -> None:
    assert get(store, new_application_id()) is None


def test_saving_the_same_id_twice_keeps_the_first_result(store: Store) -> None:
    first = record(status="stored")
    again = msgspec.structs.replace(
        first, status="rejected", processed_at_ns=first.processed_at_ns + 1, document=b"{}"
    )

    save(store, first)
    save(store, again)

    assert get(store, first.id) == first


def test_saving_the_same_id_twice_in_one_batch_keeps_the_first(store: Store) -> None:
    first = record()
    again = msgspec.structs.replace(first, status="rejected")

    save(store, first, again)

    assert get(store, first.id) == first


def test_a_batch_with_one_bad_record_saves_none_of_it(store: Store) -> None:
    # Given a batch whose last record breaks a NOT NULL column
    good = record()
    bad = record(status=None)

    # When it is saved, the backend refuses it with its own error
    with pytest.raises(Exception):  # noqa: B017 - the contract names no error type
        save(store, good, bad)

    # Then its valid neighbour is not visible either
    assert get(store, good.id) is None


def test_many_records_save_in_one_batch(store: Store) -> None:
    batch = [record(idempotency_key=f"idem-{i}") for i in range(500)]

    save(store, *batch)

    assert all(get(store, r.id) == r for r in batch[::50])


def test_saved_records_survive_close_and_reopen(store_factory: StoreFactory) -> None:
    store = store_factory()
    saved = record()
    save(store, saved)
    store_factory.close(store)

    assert get(store_factory(), saved.id) == saved


def test_a_caller_that_gives_up_does_not_stall_later_writes(tmp_path: Path) -> None:
    # Embedded only: its writer thread answers callers on their own event loops.
    store = SQLiteStore(tmp_path / "alone.db")
    asyncio.run(store.open())

    # Given a caller that stops waiting for a big batch, and whose event loop then ends
    async def give_up() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(store.save_results([record() for _ in range(20_000)]), 0.001)

    asyncio.run(give_up())

    # When another caller saves a record, it is answered (not left waiting forever)
    later = record()
    asyncio.run(asyncio.wait_for(store.save_results([later]), 3.0))
    try:
        assert asyncio.run(store.get_application(later.id)) == later
    finally:
        asyncio.run(store.close())


# -- migrations -------------------------------------------------------------------------


def test_open_records_each_migration_file_once(store_factory: StoreFactory) -> None:
    store_factory()

    assert store_factory.applied_migrations() == store_factory.migration_files()


def test_reopening_applies_no_migration_twice(store_factory: StoreFactory) -> None:
    store_factory.close(store_factory())

    reopened = store_factory()

    assert store_factory.applied_migrations() == store_factory.migration_files()
    run(reopened.ping())


def test_the_search_migration_fills_the_route_of_rows_stored_before_it(
    store_factory: StoreFactory,
) -> None:
    # Given rows written before the route had a column of its own
    store_factory.migrate_before(8)
    documents = {
        "routed": b'{"assessment":{"enrichment":{"route":"manual_review","score":600}}}',
        "rejected": b'{"assessment":{"violations":[{"code":"x"}],"enrichment":null}}',
        "dead": b'{"attempts":[]}',
    }
    statuses = {"routed": "stored", "rejected": "rejected", "dead": "dead_lettered"}
    for name, document in documents.items():
        store_factory.execute(
            "INSERT INTO applications (id, status, api_key_id, idempotency_key, channel,"
            " received_at_ns, processed_at_ns, document, rules_version, product_version)"
            f" VALUES ('{name}', '{statuses[name]}', 'k', 'i', 'web', 1, 2,"
            f" '{document.decode()}', 'r', 'p')"
        )

    # When a store opens the database
    store = store_factory()

    # Then each stored row has the route of its document, the others none
    assert {name: get(store, name).route for name in documents} == {  # type: ignore[union-attr]
        "routed": "manual_review", "rejected": None, "dead": None,
    }


# -- API keys ---------------------------------------------------------------------------


def api_key(**changes: object) -> tuple[ApiKey, str]:
    key_id, secret = generate()
    key = ApiKey(
        id=key_id,
        label="ops laptop",
        scopes=frozenset({Scope.SUBMIT, Scope.READ}),
        created_at_ns=time.time_ns(),
    )
    return msgspec.structs.replace(key, **changes), secret


def test_created_api_key_is_found_by_the_hash_of_its_secret(store: Store) -> None:
    key, secret = api_key()

    run(store.create_api_key(key, hash_key(secret), actor="test"))

    assert run(store.find_api_key(hash_key(secret))) == key


def test_a_key_keeps_its_partner_and_its_own_limit(store: Store) -> None:
    key, secret = api_key(partner_id="acme", rate_per_s=2.5, burst=3)

    run(store.create_api_key(key, hash_key(secret), actor="test"))

    assert run(store.find_api_key(hash_key(secret))) == key
    assert run(store.list_api_keys()) == [key]


def test_a_key_s_creation_and_revocation_enter_the_audit_trail(store: Store) -> None:
    key, secret = api_key(partner_id="acme", scopes=frozenset({Scope.SUBMIT}))
    run(store.create_api_key(key, hash_key(secret), actor="cli:ops@host1"))
    revoked_at_ns = key.created_at_ns + SECOND_NS
    run(store.revoke_api_key(key.id, revoked_at_ns, actor="cli:ops@host2"))
    run(store.revoke_api_key(key.id, revoked_at_ns + SECOND_NS, actor="cli:ops@host3"))

    entries = sorted(run(store.audit_of(key.id, limit=10)), key=lambda e: e.seq)

    assert [(e.action, e.actor, e.at_ns) for e in entries] == [
        ("key_created", "cli:ops@host1", key.created_at_ns),
        ("key_revoked", "cli:ops@host2", revoked_at_ns),  # the second revoke changed nothing
    ]
    assert entries[0].detail["scopes"] == ["submit"]
    assert entries[0].detail["partner_id"] == "acme"
    assert secret not in repr(entries) and hash_key(secret) not in repr(entries)


def test_unknown_api_key_hash_finds_nothing(store: Store) -> None:
    key, secret = api_key()
    run(store.create_api_key(key, hash_key(secret), actor="test"))

    assert run(store.find_api_key(hash_key(secret + "x"))) is None


def test_api_keys_are_listed_oldest_first(store: Store) -> None:
    now_ns = time.time_ns()
    newer, newer_secret = api_key(created_at_ns=now_ns, scopes=frozenset({Scope.OPERATE}))
    older, older_secret = api_key(created_at_ns=now_ns - SECOND_NS, label="")
    run(store.create_api_key(newer, hash_key(newer_secret), actor="test"))
    run(store.create_api_key(older, hash_key(older_secret), actor="test"))

    assert run(store.list_api_keys()) == [older, newer]


def test_api_key_keeps_its_expiry(store: Store) -> None:
    key, secret = api_key(expires_at_ns=time.time_ns() + 3600 * SECOND_NS)

    run(store.create_api_key(key, hash_key(secret), actor="test"))

    assert run(store.find_api_key(hash_key(secret))) == key


def test_revoked_api_key_is_found_but_not_usable(store: Store) -> None:
    key, secret = api_key()
    run(store.create_api_key(key, hash_key(secret), actor="test"))
    revoked_at_ns = time.time_ns()

    assert run(store.revoke_api_key(key.id, revoked_at_ns, actor="test")) is True

    found = run(store.find_api_key(hash_key(secret)))
    assert found is not None
    assert found.revoked_at_ns == revoked_at_ns
    assert not found.usable(revoked_at_ns)


def test_revoking_twice_reports_false_and_keeps_the_first_time(store: Store) -> None:
    key, secret = api_key()
    run(store.create_api_key(key, hash_key(secret), actor="test"))
    first_ns = time.time_ns()
    run(store.revoke_api_key(key.id, first_ns, actor="test"))

    assert run(store.revoke_api_key(key.id, first_ns + SECOND_NS, actor="test")) is False

    found = run(store.find_api_key(hash_key(secret)))
    assert found is not None and found.revoked_at_ns == first_ns


def test_revoking_an_unknown_key_reports_false(store: Store) -> None:
    assert run(store.revoke_api_key("no-such-key", time.time_ns(), actor="test")) is False


def test_expired_api_key_is_not_usable(store: Store) -> None:
    now_ns = time.time_ns()
    key, secret = api_key(expires_at_ns=now_ns - SECOND_NS)
    run(store.create_api_key(key, hash_key(secret), actor="test"))

    found = run(store.find_api_key(hash_key(secret)))

    assert found is not None
    assert not found.usable(now_ns)


def test_api_key_is_usable_until_it_expires(store: Store) -> None:
    now_ns = time.time_ns()
    key, secret = api_key(expires_at_ns=now_ns + SECOND_NS)
    run(store.create_api_key(key, hash_key(secret), actor="test"))

    found = run(store.find_api_key(hash_key(secret)))

    assert found is not None
    assert found.usable(now_ns)
    assert not found.usable(now_ns + SECOND_NS)


# -- dead letters and the audit trail ------------------------------------------------------


def dead_letter(application: ApplicationRecord, **changes: object) -> DeadLetter:
    base = DeadLetter(
        id=application.id,
        status="open",
        api_key_id=application.api_key_id,
        idempotency_key=application.idempotency_key,
        channel=application.channel,
        partner_id=application.partner_id,
        external_id=application.external_id,
        received_at_ns=application.received_at_ns,
        dead_lettered_at_ns=application.processed_at_ns,
        error_code="EnrichmentTimeout",
        last_error="enrichment timed out",
        attempts=(AttemptRecord(attempt=1, at_ns=1, error_code="EnrichmentTimeout",
                                message="enrichment timed out"),),
        envelope=b"\x81\xa1v\x01",
    )
    return msgspec.structs.replace(base, **changes)


def dead(**changes: object) -> tuple[ApplicationRecord, DeadLetter]:
    app = record(status="dead_lettered", route=None, document=b'{"attempts":[]}', **changes)
    return app, dead_letter(app)


def save_dead(store: Store, *pairs: tuple[ApplicationRecord, DeadLetter]) -> None:
    run(store.save_results([a for a, _ in pairs], [d for _, d in pairs]))


def resolve(store: Store, letter: DeadLetter, status: DeadLetterStatus, **changes: object) -> bool:
    args: dict[str, Any] = {
        "seen_dead_lettered_at_ns": letter.dead_lettered_at_ns, "status": status,
        "actor": "ops-key", "at_ns": time.time_ns(), "reason": "checked by hand",
        "detail": {"before": "dead_lettered"},
    }
    args.update(changes)
    return run(store.resolve_dead_letter(letter.id, **args))


def test_dead_letter_is_saved_with_its_application_in_one_batch(store: Store) -> None:
    app, letter = dead()

    save_dead(store, (app, letter))

    assert run(store.get_dead_letter(app.id)) == letter
    assert get(store, app.id).status == "dead_lettered"  # type: ignore[union-attr]


def test_dead_letters_list_newest_first_in_pages(store: Store) -> None:
    pairs = [dead(processed_at_ns=1_000 + i) for i in range(5)]
    save_dead(store, *pairs)

    first, cursor = run(store.list_dead_letters(DeadLetterFilter(), limit=3))
    second, end = run(store.list_dead_letters(DeadLetterFilter(), limit=3, cursor=cursor))

    ids = [d.id for d in first + second]
    assert ids == [d.id for _, d in sorted(pairs, key=lambda p: -p[1].dead_lettered_at_ns)]
    assert end is None


def test_dead_letters_filter_by_error_channel_partner_external_id_and_time(store: Store) -> None:
    a, b = dead(channel="web", external_id="crm-1"), dead(channel="broker", partner_id="p-9")
    b = (b[0], msgspec.structs.replace(b[1], error_code="StoreTimeout"))
    save_dead(store, a, b)

    def ids(**where: Any) -> list[str]:
        found, _ = run(store.list_dead_letters(DeadLetterFilter(**where), limit=10))
        return [d.id for d in found]

    assert ids(error_code="StoreTimeout") == [b[0].id]
    assert ids(channel="web") == [a[0].id]
    assert ids(partner_id="p-9") == [b[0].id]
    assert ids(external_id="crm-1") == [a[0].id]
    assert ids(id=a[0].id) == [a[0].id]
    assert ids(since_ns=b[1].dead_lettered_at_ns + 1) == []
    assert run(store.count_dead_letters(DeadLetterFilter(channel="broker"))) == 1


def test_resolving_a_dead_letter_updates_its_application_and_the_audit_trail(
    store: Store,
) -> None:
    app, letter = dead()
    save_dead(store, (app, letter))

    assert resolve(store, letter, DeadLetterStatus.DISCARDED) is True

    assert run(store.get_dead_letter(app.id)).status == "discarded"  # type: ignore[union-attr]
    assert get(store, app.id).status == "discarded"  # type: ignore[union-attr]
    [entry] = run(store.audit_trail(limit=10))
    assert (entry.actor, entry.action, entry.target) == ("ops-key", "discard", app.id)
    assert entry.detail == {"before": "dead_lettered"}
    assert run(store.count_dead_letters(DeadLetterFilter())) == 0  # no longer open


def test_a_dead_letter_resolves_once(store: Store) -> None:
    app, letter = dead()
    save_dead(store, (app, letter))
    resolve(store, letter, DeadLetterStatus.REPLAYED)

    assert resolve(store, letter, DeadLetterStatus.DISCARDED) is False
    assert len(run(store.audit_trail(limit=10))) == 1


def test_a_dead_letter_that_changed_since_it_was_seen_is_not_resolved(store: Store) -> None:
    app, letter = dead()
    save_dead(store, (app, letter))

    assert resolve(store, letter, DeadLetterStatus.DISCARDED,
                   seen_dead_lettered_at_ns=letter.dead_lettered_at_ns - 1) is False


def test_a_replays_result_replaces_the_dead_lettered_row(store: Store) -> None:
    app, letter = dead()
    save_dead(store, (app, letter))
    resolve(store, letter, DeadLetterStatus.REPLAYED)

    save(store, msgspec.structs.replace(app, status="stored", route="fast_track",
                                        document=b'{"ok":true}'))

    replaced = get(store, app.id)
    assert replaced is not None
    assert (replaced.status, replaced.route) == ("stored", "fast_track")


def test_a_stored_application_is_never_replaced(store: Store) -> None:
    stored = record()
    save(store, stored)

    save_dead(store, (msgspec.structs.replace(stored, status="dead_lettered"),
                      dead_letter(stored)))

    assert get(store, stored.id).status == "stored"  # type: ignore[union-attr]


def test_a_replay_that_fails_again_reopens_its_dead_letter(store: Store) -> None:
    app, letter = dead()
    save_dead(store, (app, letter))
    resolve(store, letter, DeadLetterStatus.REPLAYED)
    again = failed_again(letter, first_attempt_at_ns=letter.dead_lettered_at_ns + 1)

    save_dead(store, (app, again))

    reopened = run(store.get_dead_letter(app.id))
    assert reopened is not None
    assert (reopened.status, reopened.error_code, reopened.resolved_by) == (
        "open", "StillBroken", None)
    assert reopened.attempts == again.attempts
    assert get(store, app.id).status == "dead_lettered"  # type: ignore[union-attr]


def failed_again(letter: DeadLetter, *, first_attempt_at_ns: int) -> DeadLetter:
    """The letter as the processor writes it when the application fails anew: a later
    dead-letter time and an attempt history whose first attempt is `first_attempt_at_ns`."""
    attempt = AttemptRecord(attempt=1, at_ns=first_attempt_at_ns, error_code="StillBroken",
                            message="still broken")
    return msgspec.structs.replace(
        letter, dead_lettered_at_ns=letter.dead_lettered_at_ns + 5, error_code="StillBroken",
        last_error="still broken", attempts=(attempt,))


def test_a_stale_redelivery_that_fails_again_leaves_a_replayed_dead_letter_replayed(
    store: Store,
) -> None:
    # Given a dead letter an operator replayed
    app, letter = dead()
    save_dead(store, (app, letter))
    resolve(store, letter, DeadLetterStatus.REPLAYED)
    # When the old delivery (committed, not yet acked) comes back and fails once more:
    # its history begins before the letter was written
    stale = failed_again(letter, first_attempt_at_ns=letter.attempts[0].at_ns)

    save_dead(store, (app, stale))

    # Then the letter and its application stay replayed, awaiting the replay's result
    kept = run(store.get_dead_letter(app.id))
    assert kept is not None
    assert (kept.status, kept.error_code, kept.resolved_by) == (
        "replayed", letter.error_code, "ops-key")
    assert get(store, app.id).status == "replayed"  # type: ignore[union-attr]


@pytest.mark.parametrize("first_attempt", ["stale", "new"])
def test_a_discarded_dead_letter_stays_discarded_when_saved_again(
    store: Store, first_attempt: str
) -> None:
    app, letter = dead()
    save_dead(store, (app, letter))
    resolve(store, letter, DeadLetterStatus.DISCARDED)
    first_at_ns = {"stale": letter.attempts[0].at_ns,
                   "new": letter.dead_lettered_at_ns + 1}[first_attempt]

    save_dead(store, (app, failed_again(letter, first_attempt_at_ns=first_at_ns)))

    kept = run(store.get_dead_letter(app.id))
    assert kept is not None
    assert (kept.status, kept.error_code, kept.resolution) == (
        "discarded", letter.error_code, "checked by hand")
    assert get(store, app.id).status == "discarded"  # type: ignore[union-attr]


def test_an_open_dead_letter_saved_again_takes_the_new_attempts(store: Store) -> None:
    app, letter = dead()
    save_dead(store, (app, letter))
    again = failed_again(letter, first_attempt_at_ns=letter.attempts[0].at_ns)

    save_dead(store, (app, again))

    assert run(store.get_dead_letter(app.id)) == again


def test_the_audit_trail_refuses_edits(store_factory: StoreFactory) -> None:
    store = store_factory()
    app, letter = dead()
    save_dead(store, (app, letter))
    resolve(store, letter, DeadLetterStatus.DISCARDED)

    with pytest.raises(Exception, match="append-only"):
        store_factory.execute("DELETE FROM audit_log")


def test_audit_counts_count_each_action_since_a_time_with_resolutions_and_sign_ins(
    store: Store,
) -> None:
    app, letter = dead()
    save_dead(store, (app, letter))
    resolve(store, letter, DeadLetterStatus.REPLAYED)
    for at_ns in (1_000, 2_000, 3_000):
        run(store.record_audit(at_ns=at_ns, actor="ops-key", action="login", target="dashboard",
                               detail={}))

    assert run(store.audit_counts(2_000)) == {"login": 2, "replay": 1}
    newest = run(store.audit_trail(limit=1))[0]
    assert (newest.at_ns, newest.action, newest.target) == (3_000, "login", "dashboard")


def test_audit_of_lists_one_applications_entries_oldest_first(store: Store) -> None:
    # Given two applications, one replayed then discarded, the other only signed in near
    (app, letter), (other, _) = dead(), dead()
    save_dead(store, (app, letter))
    resolve(store, letter, DeadLetterStatus.REPLAYED, at_ns=5_000)
    run(store.record_audit(at_ns=6_000, actor="ops-key", action="login", target="dashboard",
                           detail={}))
    run(store.record_audit(at_ns=7_000, actor="ops-2", action="discard", target=app.id,
                           detail={"reason": "dup"}))

    entries = run(store.audit_of(app.id, limit=10))

    assert [(e.at_ns, e.actor, e.action, e.target, e.detail) for e in entries] == [
        (5_000, "ops-key", "replay", app.id, {"before": "dead_lettered"}),
        (7_000, "ops-2", "discard", app.id, {"reason": "dup"})]
    assert [e.action for e in run(store.audit_of(app.id, limit=1))] == ["replay"]
    assert run(store.audit_of(other.id, limit=10)) == []
    assert run(store.audit_of("no\x00such", limit=10)) == []


def test_ssn_matches_finds_recent_applications_with_the_same_hash(store: Store) -> None:
    old = record(ssn_hash="aa" * 32, received_at_ns=1_000)
    recent = record(ssn_hash="aa" * 32, received_at_ns=5_000)
    other = record(ssn_hash="bb" * 32, received_at_ns=5_000)
    save(store, old, recent, other)

    found = run(store.ssn_matches(["aa" * 32, "cc" * 32], 2_000))

    assert found == {("aa" * 32, recent.id)}
