"""The production store: PostgreSQL through an asyncpg pool, documents as JSON.

Any failure to reach or use the server surfaces as StoreUnavailable, the one
error callers handle: the processor leaves its batch in the broker and waits.
A query built from a request's values (`for_request=True`: the read and review
routes) is the exception: a value the server refuses there is the request's
fault, InvalidValue, which no retry can cure.
Every connection carries a server-side `statement_timeout` and a client-side
command timeout, so neither a slow query nor a frozen server hangs a caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec

from loanflow.backends.postgres.api_keys import PostgresApiKeys
from loanflow.backends.postgres.errors import (
    UNCONFIRMED_COMMIT,
    leaves_connection_useless,
    refused_for_data,
    unconfirmed_commit,
)
from loanflow.backends.postgres.export import PostgresExport
from loanflow.backends.postgres.hosts import PrimaryFirst
from loanflow.backends.postgres.hosts import parse as parse_url
from loanflow.backends.postgres.logins import PostgresLogins
from loanflow.backends.postgres.review import PostgresReview, save_dead_letters
from loanflow.backends.postgres.review_queue import PostgresReviewQueue
from loanflow.backends.postgres.sealed import PostgresSealed
from loanflow.errors import InvalidValue, StoreUnavailable
from loanflow.store import migrations, review, review_queue, search
from loanflow.store.base import ApplicationRecord
from loanflow.store.review import DeadLetter

_COLUMNS = (
    "id, status, api_key_id, idempotency_key, channel, partner_id, external_id,"
    " received_at_ns, processed_at_ns, ssn_hash, pii_sealed, document,"
    " rules_version, product_version, route"
)
_TYPES = ("text", "text", "text", "text", "text", "text", "text", "bigint", "bigint", "text",
          "bytea", "json", "text", "text", "text")
#: The whole batch in one statement: one array per column, zipped by unnest.
_INSERT = (
    f"INSERT INTO applications ({_COLUMNS})"
    f" SELECT * FROM unnest({', '.join(f'${i}::{t}[]' for i, t in enumerate(_TYPES, 1))})"
    + review.UPSERT_APPLICATION
)
#: Through applications_ssn even before the table's first ANALYZE (migration 0010).
_SSN_MATCHES = "SELECT ssn_hash, id FROM loanflow_ssn_matches($1::text[], $2)"

log = logging.getLogger(__name__)

#: Seconds a prepared statement (and its plan) is kept before it is prepared again.
PLAN_LIFETIME_S = 2.0
#: Serialises migrations of one database across processes (the bytes of "loanflow").
MIGRATION_LOCK_ID = 0x6C6F616E666C6F77
#: Migrations may rewrite whole tables, so they get more time than one statement.
MIGRATION_TIMEOUT_S = 60.0
#: The client waits this much longer than the server's statement_timeout: a live
#: server cancels first with a clean error; the client's timer fires only when
#: the server no longer answers at all.
CLIENT_MARGIN_S = 1.0

#: Everything that means "the store cannot do this now". Server errors are
#: included: the processor must keep the batch and retry, never crash on them;
#: only a batch write's data and constraint errors become StoreRefused
#: (errors.py), the batch's own fault.
_BACKEND_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)


class PostgresStore(PostgresApiKeys, PostgresReview, PostgresReviewQueue, PostgresExport,
                    PostgresLogins, PostgresSealed):
    def __init__(
        self,
        url: str,
        *,
        min_pool: int = 1,
        max_pool: int = 10,
        statement_timeout_s: float = 5.0,
    ) -> None:
        if not 0 <= min_pool <= max_pool or max_pool < 1:
            raise ValueError(f"expected 0 <= min_pool <= max_pool >= 1, got {min_pool}, {max_pool}")
        if statement_timeout_s <= 0:
            raise ValueError(f"expected statement_timeout_s > 0, got {statement_timeout_s}")
        self._url = url
        # Several hosts: each new connection looks for the primary (hosts.py).
        target = parse_url(url)
        self._connect = PrimaryFirst(target) if len(target.hosts) > 1 else None
        self._min_pool, self._max_pool = min_pool, max_pool
        self._statement_timeout_s = statement_timeout_s
        self._command_timeout_s = statement_timeout_s + CLIENT_MARGIN_S
        self._pool: Any = None

    def __repr__(self) -> str:
        return f"PostgresStore({redact_url(self._url)!r})"

    async def open(self) -> None:
        if self._pool is not None:
            raise RuntimeError(f"expected a closed store, got {self!r} already open")
        timeout_ms = str(int(self._statement_timeout_s * 1000))
        try:
            self._pool = await asyncpg.create_pool(
                self._url,
                min_size=self._min_pool,
                max_size=self._max_pool,
                # Connect timeout: a frozen server accepts TCP but never answers.
                timeout=self._command_timeout_s,
                command_timeout=self._command_timeout_s,
                server_settings={
                    "statement_timeout": timeout_ms,
                    # A client that stalls mid-transaction (frozen, partitioned)
                    # would hold its rows' locks and block every redelivery.
                    "idle_in_transaction_session_timeout": timeout_ms,
                    "application_name": "loanflow",
                },
                init=_init_connection,
                reset=_keep_session,
                connect=self._connect,
                # Prepared statements are made anew this often, so PostgreSQL plans them
                # for the table as it is now: a plan made while the table was a few
                # pages long (a sequential scan) must not outlive the table's growth.
                # Preparing for each call instead cost a round trip per statement.
                max_cached_statement_lifetime=PLAN_LIFETIME_S,
            )
        except _BACKEND_ERRORS as exc:
            raise StoreUnavailable(f"cannot open {self!r}: {_describe(exc)}") from exc
        try:
            async with self._transaction("migrate") as conn:
                applied = await _migrate(conn)
            if applied:
                log.info("%r: applied %d migration(s)", self, applied)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            # Graceful close says goodbye to the server; a frozen one never answers.
            await asyncio.wait_for(pool.close(), self._command_timeout_s)
        except _BACKEND_ERRORS:
            pool.terminate()

    async def save_results(
        self, records: Sequence[ApplicationRecord], dead_letters: Sequence[DeadLetter] = ()
    ) -> None:
        with refused_for_data():
            await self._save_results(records, dead_letters)

    async def _save_results(
        self, records: Sequence[ApplicationRecord], dead_letters: Sequence[DeadLetter]
    ) -> None:
        rows = _rows(records)
        if not rows and not dead_letters:
            return
        if not dead_letters:
            # One statement outside a transaction block commits on its own: one round trip.
            async with self._connection("save_results") as conn:
                await conn.execute(_INSERT, *_columns(rows))
            return
        async with self._transaction("save_results") as conn:
            # The dead letters first: one the upsert refuses keeps its application row too.
            saved = await save_dead_letters(conn, sorted(dead_letters, key=lambda d: d.id))
            rows = _rows(review.without_refused(records, dead_letters, saved))
            if rows:
                await conn.execute(_INSERT, *_columns(rows))

    async def get_application(self, application_id: str) -> ApplicationRecord | None:
        if "\x00" in application_id:
            return None  # PostgreSQL text cannot hold NUL, so no such id exists
        async with self._connection("get_application", for_request=True) as conn:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS}, {review_queue.DECISION_COLUMNS} FROM applications"
                " WHERE id = $1", application_id
            )
        if row is None:
            return None
        fields = dict(row.items())
        decision = review_queue.decision_from_columns(*(
            fields.pop(name) for name in review_queue.DECISION_FIELDS))
        return ApplicationRecord(**fields, review=decision)

    async def search_applications(
        self, where: search.ApplicationFilter, *, limit: int, cursor: str | None = None
    ) -> tuple[list[search.ApplicationSummary], str | None]:
        sql, params = search.select_sql(where, cursor, limit, lambda n: f"${n}")
        async with self._connection("search_applications", for_request=True) as conn:
            rows = await conn.fetch(sql, *params)
        return search.page([search.summary_from_row(tuple(row)) for row in rows], limit)

    async def ssn_matches(
        self, ssn_hashes: Sequence[str], since_ns: int
    ) -> set[tuple[str, str]]:
        if not ssn_hashes:
            return set()
        async with self._connection("ssn_matches") as conn:
            rows = await conn.fetch(_SSN_MATCHES, list(set(ssn_hashes)), since_ns)
        return {(row["ssn_hash"], row["id"]) for row in rows}

    async def ping(self) -> None:
        async with self._connection("ping") as conn:
            await conn.fetchval("SELECT 1")

    @contextlib.asynccontextmanager
    async def _connection(self, what: str, *, for_request: bool = False) -> AsyncIterator[Any]:
        """A pooled connection; backend errors leave as StoreUnavailable, or as InvalidValue
        for a value of a request's (`for_request`) the server refused (SQLSTATE class 22:
        NUL in text, a number out of range; asyncpg's own argument checks raise it too)."""
        pool = self._pool
        if pool is None:
            raise StoreUnavailable(f"{what}: {self!r} is not open")
        try:
            async with pool.acquire(timeout=self._command_timeout_s) as conn:
                # A COMMIT that stopped waiting for the synchronous standby is reported
                # as done, with a warning: the result may be on this host only.
                unconfirmed: list[object] = []

                def on_notice(_: object, message: object) -> None:
                    if unconfirmed_commit(message):
                        unconfirmed.append(message)

                conn.add_log_listener(on_notice)
                try:
                    yield conn
                    # The notice came before the answer, so its listener has run.
                    if unconfirmed:
                        log.warning("%s: %s", what, UNCONFIRMED_COMMIT)
                        raise asyncpg.InterfaceError(UNCONFIRMED_COMMIT)
                except asyncpg.PostgresError as exc:
                    if leaves_connection_useless(exc):
                        # A standby now, or shutting down: this connection will never
                        # write again, nor will its pool mates. New ones find the primary.
                        conn.terminate()
                        await pool.expire_connections()
                    raise  # otherwise the server answered: the connection is sound
                except BaseException as exc:
                    # Timed out, cut off or cancelled: the connection's state is
                    # unknown, and a polite reset against a frozen server would
                    # wait out a second timeout. Drop it; the pool opens another.
                    conn.terminate()
                    if isinstance(exc, OSError | asyncpg.ConnectionDoesNotExistError):
                        # The server is gone: its other connections are too, and on
                        # a lost host they would each wait out a timeout to find out.
                        await pool.expire_connections()
                    raise
                finally:
                    # The pool refuses a connection with a listener left on; a terminated
                    # one is already out of it (and refuses the call).
                    with contextlib.suppress(asyncpg.InterfaceError):
                        conn.remove_log_listener(on_notice)
        except _BACKEND_ERRORS as exc:
            if for_request and isinstance(exc, asyncpg.DataError):
                raise InvalidValue(_refused_value(exc)) from exc
            raise StoreUnavailable(f"{what}: {_describe(exc)}") from exc

    @contextlib.asynccontextmanager
    async def _transaction(self, what: str, *, for_request: bool = False) -> AsyncIterator[Any]:
        async with self._connection(what, for_request=for_request) as conn:
            # Not `async with conn.transaction()`: its ROLLBACK on a dead
            # connection would wait out another timeout; _connection drops it.
            transaction = conn.transaction()
            await transaction.start()
            try:
                yield conn
            except asyncpg.PostgresError:
                await transaction.rollback()
                raise
            await transaction.commit()


def redact_url(url: str) -> str:
    """The URL with its password (user part or `password=` parameter) as `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or not parts.scheme:
        return "(hidden: not a URL)"  # e.g. a libpq "key=value" DSN
    user, at, host = parts.netloc.rpartition("@")
    if at and ":" in user:
        user = user.partition(":")[0] + ":***"
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return urlunsplit(parts._replace(netloc=f"{user}{at}{host}", query=query))


async def _init_connection(conn: Any) -> None:
    # JSON in binary form is its text, JSONB a version byte and the text: either
    # way the document bytes go through without a decode/encode round in Python.
    await conn.set_type_codec(
        "json", schema="pg_catalog", format="binary", encoder=bytes, decoder=bytes,
    )
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", format="binary",
        encoder=_jsonb_encode, decoder=_jsonb_decode,
    )


async def _keep_session(conn: Any) -> None:
    """Release without asyncpg's default reset query (advisory unlock, CLOSE ALL, UNLISTEN,
    RESET ALL): a round trip per checkout, two per processed batch. This
    store leaves no session state to reset: no LISTEN, session locks, cursors or SET
    outside a transaction (migrations use transaction-scoped ones), and the settings
    given at connect are what RESET ALL would restore. An open transaction is still
    rolled back by the pool before this is called."""


def _jsonb_encode(document: bytes) -> bytes:
    return b"\x01" + document


def _jsonb_decode(data: bytes) -> bytes:
    if data[:1] != b"\x01":
        raise ValueError(f"expected JSONB binary format version 1, got {data[:1]!r}")
    return bytes(data[1:])


def _rows(records: Sequence[ApplicationRecord]) -> list[tuple[object, ...]]:
    # The first record of an id wins, as a second INSERT would leave it; sorted
    # by id so two batches that overlap lock their rows in the same order and
    # cannot deadlock.
    first: dict[str, ApplicationRecord] = {}
    for record in records:
        first.setdefault(record.id, record)
    return [
        (r.id, r.status, r.api_key_id, r.idempotency_key, r.channel, _text(r.partner_id),
         _text(r.external_id), r.received_at_ns, r.processed_at_ns, r.ssn_hash, r.pii_sealed,
         _document(r.document), r.rules_version, r.product_version, r.route)
        for _, r in sorted(first.items())
    ]


def _columns(rows: list[tuple[object, ...]]) -> list[list[object]]:
    """Rows as one list per column: the arrays `_INSERT` unnests."""
    return [list(column) for column in zip(*rows, strict=True)]


def _text(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL, and the API lets one through in free
    # text: refusing it here would turn one application into an endless outage.
    if value is None or "\x00" not in value:
        return value
    return value.replace("\x00", "\ufffd")


def _document(document: bytes) -> bytes:
    if b"\\u0000" not in document:
        return document
    return msgspec.json.encode(_without_nul(msgspec.json.decode(document)))


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {_text(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


async def _migrate(conn: Any) -> int:
    """Apply pending migrations in the caller's transaction; returns how many."""
    # A transaction-scoped lock: many processes start at once, one migrates,
    # the others wait and then find nothing to do. It goes with the transaction,
    # even when the connection dies.
    await conn.execute(
        "SELECT set_config('statement_timeout', $1, true)", f"{int(MIGRATION_TIMEOUT_S)}s"
    )
    await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_ID,
                       timeout=MIGRATION_TIMEOUT_S)
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ns BIGINT NOT NULL)"
    )
    done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
    applied = 0
    for migration in migrations.load("postgres"):
        if migration.version in done:
            continue
        await conn.execute(migration.sql, timeout=MIGRATION_TIMEOUT_S)
        await conn.execute(
            "INSERT INTO schema_migrations VALUES ($1, $2, $3)",
            migration.version, migration.name, time.time_ns(),
        )
        applied += 1
    return applied


def _refused_value(exc: Any) -> str:
    """What a client is told: the kind of value, never the value (the server's message
    quotes it)."""
    kind = {
        "22021": "text with a NUL or a character not in UTF-8",
        "22P05": "text with a character the database cannot hold",
        "22003": "a number out of range",
    }.get(exc.sqlstate, "a value of the wrong form")
    if "out of int64 range" in str(exc):
        kind = "a number out of range"  # asyncpg's own check (SQLSTATE 22000)
    return f"the request holds {kind}; change it (retrying as it is cannot succeed)"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncpg.PostgresError):
        # Class and SQLSTATE only: a server message may quote row values (PII).
        return f"{type(exc).__name__} (SQLSTATE {exc.sqlstate})"
    return f"{type(exc).__name__}: {str(exc)[:200]}"
