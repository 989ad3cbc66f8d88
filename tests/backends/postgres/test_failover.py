"""PostgresStore across a failover: several hosts in one URL, a host that turns read-only,
and a batch whose COMMIT outcome the client never learns.

The failover under load itself (a real synchronous standby promoted) is fault 12,
tests/faults/test_postgres_failover.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import msgspec
import pytest

from loanflow.errors import StoreUnavailable
from loanflow.models import AttemptRecord
from loanflow.store.base import ApplicationRecord
from tests.backends.postgres.test_store import fetch, opened, record
from tests.store.test_contract import dead
from tests.throwaway.postgres import (
    PostgresServer,
    execute_sql,
    postgres_server_fixture,
    shared_database_fixture,
)

#: Every test starts throwaway servers or uses the shared one: the slow tier.
pytestmark = pytest.mark.slow

database_url = shared_database_fixture()
first_server = postgres_server_fixture()
second_server = postgres_server_fixture()

#: The store's statement timeout here; its connect timeout is 1 s longer (2 s).
TIMEOUT_S = 1.0
#: How long a reload of postgresql.conf may take to reach every backend.
RELOAD_WAIT_S = 5.0


def on_hosts(url: str, *ports: int, query: str = "") -> str:
    """`url` with its host replaced by 127.0.0.1 at each of `ports`."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    hosts = ",".join(f"127.0.0.1:{port}" for port in ports)
    return urlunsplit(parts._replace(netloc=f"{user}@{hosts}", query=query))


@contextlib.contextmanager
def silent_host() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) and never answers: a
    frozen server, or how a lost host looks until the connect gives up."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


@contextlib.contextmanager
def same_database(*servers: PostgresServer) -> Iterator[list[str]]:
    """A new database of one name on each server (as on a primary and its standby),
    migrated; its URL on each."""
    name = f"loanflow_test_{secrets.token_hex(6)}"
    urls = [urlunsplit(urlsplit(server.url)._replace(path=f"/{name}")) for server in servers]
    for server, url in zip(servers, urls, strict=True):
        execute_sql(server.url, f"CREATE DATABASE {name}")
        asyncio.run(_open_and_close(url))
    try:
        yield urls
    finally:
        for server in servers:
            execute_sql(server.url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def _open_and_close(url: str) -> None:
    async with opened(url):
        pass


# -- several hosts ----------------------------------------------------------------------------


def test_a_first_host_that_never_answers_is_passed_over_and_then_tried_last(
    database_url: str,
) -> None:
    rec = record()
    with silent_host() as silent:
        url = on_hosts(database_url, silent, urlsplit(database_url).port or 5432)

        async def scenario() -> None:
            started = time.monotonic()
            async with opened(url, statement_timeout_s=TIMEOUT_S, min_pool=1,
                              max_pool=4) as store:
                # The first connection waited out the silent host's share of the timeout.
                assert time.monotonic() - started < 2 * (TIMEOUT_S + 1.0)
                started = time.monotonic()
                # Four at once: three new connections, each to the host that served.
                await asyncio.gather(*(store.save_results([record()]) for _ in range(3)),
                                     store.save_results([rec]))
                assert time.monotonic() - started < TIMEOUT_S
            assert (await fetch(database_url, "SELECT id FROM applications WHERE id = $1",
                                rec.id))

        asyncio.run(scenario())


def test_a_host_turned_read_only_is_left_for_the_writable_one(
    first_server: PostgresServer, second_server: PostgresServer,
) -> None:
    before, during, after = record(), record(), record()
    with same_database(first_server, second_server) as (first, second):
        url = on_hosts(first, first_server.port, second_server.port,
                       query="target_session_attrs=read-write")

        async def scenario() -> None:
            async with opened(url, statement_timeout_s=TIMEOUT_S, max_pool=2) as store:
                await store.save_results([before])
                # As a primary turned standby is: every write refused (SQLSTATE 25006).
                await make_read_only(first_server, True)
                try:
                    with pytest.raises(StoreUnavailable, match="25006"):
                        await store.save_results([during])
                    # Its connection is dropped; a new one finds the writable host.
                    await store.save_results([during])
                    await store.save_results([after])
                finally:
                    await make_read_only(first_server, False)

        asyncio.run(scenario())
        ids = "SELECT id FROM applications ORDER BY id"
        assert [r["id"] for r in asyncio.run(fetch(first, ids))] == [before.id]
        assert {r["id"] for r in asyncio.run(fetch(second, ids))} == {during.id, after.id}


async def make_read_only(server: PostgresServer, read_only: bool) -> None:
    """`default_transaction_read_only` for the whole server, in force once this returns."""
    await set_server_wide(server, "default_transaction_read_only", "on" if read_only else "off")


async def set_server_wide(server: PostgresServer, name: str, value: str) -> None:
    """ALTER SYSTEM and reload: in force for every backend's next command on return."""
    for sql in (f"ALTER SYSTEM SET {name} = '{value}'", "SELECT pg_reload_conf()"):
        await asyncio.to_thread(execute_sql, server.url, sql)
    deadline = time.monotonic() + RELOAD_WAIT_S
    while (await fetch(server.url, f"SHOW {name}"))[0][0] != value:
        assert time.monotonic() < deadline, f"the reload did not take within {RELOAD_WAIT_S}s"
        await asyncio.sleep(0.05)
    # The postmaster read the file and then signalled every backend; each takes it up
    # before its next command.
    await asyncio.sleep(0.2)


# -- a COMMIT the synchronous standby never confirmed -----------------------------------------


@pytest.mark.parametrize("with_dead_letter", [False, True], ids=["one-statement", "transaction"])
def test_a_commit_the_synchronous_standby_never_confirmed_is_not_saved(
    first_server: PostgresServer, with_dead_letter: bool,
) -> None:
    stored = record()
    dead_row, letter = dead()
    records = [stored, *([dead_row] if with_dead_letter else [])]
    letters = [letter] if with_dead_letter else []
    with same_database(first_server) as (url,):

        async def scenario() -> None:
            async with opened(url, statement_timeout_s=TIMEOUT_S, max_pool=1) as store:
                # Given a primary whose synchronous standby is away,
                await set_server_wide(first_server, "synchronous_standby_names", "standby1")
                try:
                    # a COMMIT waits for it; when the wait is cancelled (an operator's
                    # pg_cancel_backend on the hung sessions), PostgreSQL reports the
                    # COMMIT done, with a WARNING: on this host only. Not saved.
                    cancel = asyncio.ensure_future(cancel_sync_rep_waits(url))
                    with pytest.raises(StoreUnavailable, match="synchronous standby"):
                        await store.save_results(records, letters)
                    assert await cancel == 1
                finally:
                    await set_server_wide(first_server, "synchronous_standby_names", "")
                # Once the standby is back (here: none required), the retry is saved.
                await store.save_results(records, letters)
                assert (await store.get_application(stored.id)) is not None

        asyncio.run(scenario())


async def cancel_sync_rep_waits(url: str) -> int:
    """Wait for a backend waiting on synchronous replication, then cancel it."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        rows = await fetch(url, "SELECT pg_cancel_backend(pid) FROM pg_stat_activity"
                                " WHERE wait_event = 'SyncRep'")
        if rows:
            return len(rows)
        await asyncio.sleep(0.02)
    return 0


# -- a COMMIT whose outcome is unknown ---------------------------------------------------------


class CutProxy:
    """A TCP proxy to PostgreSQL that, once armed, forwards the next client message
    holding `marker`, keeps the server's answer from the client, and cuts both sides:
    the server has done the work; the client cannot know."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        self.marker: bytes | None = None
        self.cuts = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[CutProxy]:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            self._server.close()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self._upstream_port)
        cut = asyncio.Event()

        async def upstream() -> None:
            while data := await client_r.read(65536):
                server_w.write(data)
                await server_w.drain()
                if self.marker is not None and self.marker in data:
                    self.marker = None
                    self.cuts += 1
                    cut.set()
                    await asyncio.sleep(0.5)  # the server commits meanwhile
                    break

        async def downstream() -> None:
            while data := await server_r.read(65536):
                if cut.is_set():
                    continue  # the answer never reaches the client
                client_w.write(data)
                await client_w.drain()

        pumps = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
        self._tasks.update(pumps)
        with contextlib.suppress(ConnectionError):
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
        for writer in (client_w, server_w):
            writer.transport.abort()


@pytest.mark.parametrize("with_dead_letter", [False, True], ids=["one-statement", "transaction"])
def test_a_batch_whose_commit_outcome_is_unknown_is_unavailable_and_saved_again_once(
    database_url: str, with_dead_letter: bool,
) -> None:
    # Given a batch of a stored, a rejected and (in one case) a dead-lettered application,
    stored, rejected = record(), record(status="rejected")
    dead_row, letter = dead()
    records = [stored, rejected, *([dead_row] if with_dead_letter else [])]
    letters = [letter] if with_dead_letter else []
    # The one-statement batch commits on its own: cut after the Bind/Execute that carries
    # its values (ids); the batch with dead letters ends with a COMMIT.
    marker = b"COMMIT" if with_dead_letter else stored.id.encode()

    async def scenario() -> None:
        port = urlsplit(database_url).port or 5432
        async with CutProxy(port).running() as proxy:
            url = on_hosts(database_url, proxy.port)
            async with opened(url, statement_timeout_s=TIMEOUT_S, max_pool=1) as store:
                # When the connection breaks once the server has the last message,
                proxy.marker = marker
                with pytest.raises(StoreUnavailable):
                    await store.save_results(records, letters)
                assert proxy.cuts == 1
                committed = await fetch(database_url, "SELECT id FROM applications"
                                        " WHERE id = ANY($1)", [r.id for r in records])
                assert len(committed) == len(records), "the server committed the batch"
                # then the processor's retry, a redelivery later (its attempt made again),
                retried = [msgspec.structs.replace(r, processed_at_ns=r.processed_at_ns + 10**9)
                           for r in records]
                again = [msgspec.structs.replace(
                    letter, dead_lettered_at_ns=letter.dead_lettered_at_ns + 10**9,
                    attempts=(AttemptRecord(attempt=1, at_ns=2, error_code="EnrichmentTimeout",
                                            message="enrichment timed out again"),),
                ) for letter in letters]
                await store.save_results(retried, again)
                # leaves one row per application,
                await assert_once(database_url, records)
                # and one open dead letter, with the retry's attempts.
                if with_dead_letter:
                    rows = await fetch(database_url, "SELECT id, status FROM dead_letters"
                                       " WHERE id = $1", letter.id)
                    assert [tuple(r) for r in rows] == [(letter.id, "open")]
                    assert await store.get_dead_letter(letter.id) == again[0]

    asyncio.run(scenario())


async def assert_once(url: str, records: list[ApplicationRecord]) -> None:
    rows = await fetch(url, "SELECT id, status, processed_at_ns FROM applications"
                       " WHERE id = ANY($1)", [r.id for r in records])
    assert sorted(r["id"] for r in rows) == sorted(r.id for r in records)  # none twice
    got = {r["id"]: (r["status"], r["processed_at_ns"]) for r in rows}
    for rec in records:
        # A stored or rejected application never changes; a dead-lettered row takes
        # the newest result (review.UPSERT_APPLICATION).
        if rec.status != "dead_lettered":
            assert got[rec.id] == (rec.status, rec.processed_at_ns)
