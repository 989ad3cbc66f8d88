"""The embedded SQLite database: one writer thread with group commit, a few readers.

Every write is a function run inside the writer thread's transaction. The
writer takes all writes waiting at that moment, runs each inside its own
SAVEPOINT (one failing write does not undo its neighbours), and commits once:
many requests share one fsync. `synchronous=FULL` in WAL mode makes each
commit durable before any of its callers hears back. Derived data, which an
operating-system crash may undo, skips the fsync: a whole file of it
(`durable=False`: metrics), or single writes (`write(..., durable=False)`:
velocity counts in the store's file), whose group then commits with
`synchronous=NORMAL` and reaches the disk with the next durable commit (WAL
keeps commits in order).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from loanflow.errors import Unavailable

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Most writes one commit takes; bounds the time a transaction holds the lock.
MAX_GROUP = 2000
_STOP = object()


#: How long an opener retries switching a new file to WAL while others do the same.
WAL_SWITCH_TIMEOUT_S = 10.0


def connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    _switch_to_wal(conn)
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=10000")
    if read_only:
        conn.execute("PRAGMA query_only=ON")
    return conn


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """Processes opening a new file at once race to switch it to WAL, and SQLite answers
    the losers "database is locked" at once, without its busy timeout (4 of 40 starts of
    six processes). Once the file is in WAL mode, the switch is a no-op."""
    deadline = time.monotonic() + WAL_SWITCH_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class SQLiteDatabase:
    """One SQLite file: `write()` goes through the group-commit thread, `read()` to readers."""

    def __init__(
        self, path: Path, *, unavailable: type[Unavailable], readers: int = 2,
        durable: bool = True,
    ) -> None:
        self.path = path
        self._unavailable = unavailable
        self._durable = durable
        self._writes: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._local = threading.local()
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix=f"read-{path.stem}")
        self._reader_conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def open(self, schema_sql: str = "") -> None:
        """Create the file and schema (idempotent) and start the writer thread."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(self.path)
        if not self._durable:
            conn.execute("PRAGMA synchronous=NORMAL")
        if schema_sql:
            conn.executescript(schema_sql)
        self._writer = threading.Thread(
            target=self._write_loop, args=(conn,), name=f"write-{self.path.stem}", daemon=True
        )
        self._writer.start()

    def close(self) -> None:
        if self._writer is not None:
            self._writes.put(_STOP)
            self._writer.join()
            self._writer = None
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()

    async def write(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """Run `fn` in the next group commit; returns once the commit is on disk, or with
        `durable=False` once committed (an operating-system crash may undo it)."""
        if self._writer is None:
            raise self._unavailable(f"{self.path.name} is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._writes.put((fn, fut, loop, durable))
        return await fut

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._readers, self._run_read, fn)
        except sqlite3.OperationalError as exc:
            raise self._unavailable(f"{self.path.name}: {exc}") from exc
        except RuntimeError as exc:  # the reader pool was shut down: closed
            raise self._unavailable(f"{self.path.name} is closed") from exc

    def _run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, read_only=True)
            self._local.conn = conn
            with self._lock:
                self._reader_conns.append(conn)
        return fn(conn)

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        stopping, synced = False, self._durable
        while not stopping:
            group = [self._writes.get()]
            while len(group) < MAX_GROUP:
                try:
                    group.append(self._writes.get_nowait())
                except queue.Empty:
                    break
            if any(item is _STOP for item in group):
                stopping = True
                group = [item for item in group if item is not _STOP]
            if group:
                try:
                    durable = self._durable and any(item[3] for item in group)
                    if durable is not synced:  # per connection, between transactions
                        conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                        synced = durable
                    self._commit_group(conn, group)
                except Exception:
                    # The thread must outlive any one group, or every later write hangs.
                    log.exception("writer of %s: a group of writes failed", self.path.name)
        conn.close()

    def _commit_group(self, conn: sqlite3.Connection, group: list[Any]) -> None:
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, _fut, _loop, _durable in group:
                conn.execute("SAVEPOINT op")
                try:
                    outcomes.append((fn(conn), None))
                    conn.execute("RELEASE op")
                except sqlite3.OperationalError:
                    raise  # disk full, I/O error: the whole group fails below
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    outcomes.append((None, exc))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.error("commit of %d writes to %s failed: %s", len(group), self.path.name, exc)
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("rollback on %s failed", self.path.name)
            failure = self._unavailable(f"{self.path.name}: {exc}")
            outcomes = [(None, failure)] * len(group)
        for (_fn, fut, loop, _durable), (result, error) in zip(group, outcomes, strict=True):
            # RuntimeError: the caller's event loop is gone, nobody waits for this answer.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, fut, result, error)


def _settle(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.cancelled():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)
