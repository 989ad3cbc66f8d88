"""What the deployment really holds, read behind loanflow's back: SQL on the store,
commands on Redis, SQLite files. The reconciliation trusts only this and the
answers the clients heard, never loanflow's own counters."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from dataclasses import dataclass

import asyncpg
import redis
import redis.sentinel

from loanflow.backends import BROKER_FILE, STORE_FILE
from loanflow.backends.redis import keys as redis_keys
from loanflow.backends.redis import sentinel
from tests.conftest import Deployment

#: Bounded reads: a test must not hang on the very server it broke.
READ_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Snapshot:
    #: (application id, idempotency key, status) of every row in the store.
    rows: list[tuple[str, str, str]]
    dead_letters: set[str]
    #: Application ids the broker still holds: queued, in processing or waiting a retry.
    held: set[str]

    @property
    def stored_ids(self) -> set[str]:
        return {row[0] for row in self.rows}


class Backends:
    """Direct readers of one deployment's store and broker."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    def snapshot(self) -> Snapshot:
        held = self._held()  # first: an id leaves the broker only after it is stored
        rows, dead = self._store()
        return Snapshot(rows, dead, held)

    def depth(self) -> int:
        """Envelopes the broker holds (the number backpressure compares to its bound)."""
        if not self.deployment.broker_url:
            with self._sqlite(BROKER_FILE) as db:
                return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])
        with self._redis() as r:
            return int(r.xlen(redis_keys.STREAM)) + int(r.zcard(redis_keys.DELAYED))

    def _held(self) -> set[str]:
        if not self.deployment.broker_url:
            with self._sqlite(BROKER_FILE) as db:
                return {row[0] for row in db.execute("SELECT application_id FROM messages")}
        with self._redis() as r, r.pipeline(transaction=True) as pipe:
            # One MULTI: a batch released meanwhile moves from the stream to the delayed
            # set (and back on reserve); read apart, it could be in neither.
            pipe.xrange(redis_keys.STREAM)
            pipe.zrange(redis_keys.DELAYED, 0, -1)
            entries, delayed = pipe.execute()
        return {fields[b"id"].decode() for _, fields in entries} | {m.decode() for m in delayed}

    def _store(self) -> tuple[list[tuple[str, str, str]], set[str]]:
        rows_sql = "SELECT id, idempotency_key, status FROM applications"
        dead_sql = "SELECT id FROM dead_letters"
        if not self.deployment.store_url:
            with self._sqlite(STORE_FILE) as db:
                rows = [(r[0], r[1], r[2]) for r in db.execute(rows_sql)]
                dead = {r[0] for r in db.execute(dead_sql)}
            return rows, dead

        async def fetch() -> tuple[list[tuple[str, str, str]], set[str]]:
            conn = await asyncpg.connect(self.deployment.store_url, timeout=READ_TIMEOUT_S,
                                         command_timeout=READ_TIMEOUT_S)
            try:
                rows = [(r[0], r[1], r[2]) for r in await conn.fetch(rows_sql)]
                dead = {r[0] for r in await conn.fetch(dead_sql)}
                return rows, dead
            finally:
                await conn.close(timeout=READ_TIMEOUT_S)

        return asyncio.run(fetch())

    def _redis(self) -> redis.Redis:
        url = self.deployment.broker_url
        if sentinel.is_sentinel_url(url):  # the primary the Sentinels name now
            target = sentinel.parse(url)
            timeouts = {"socket_timeout": READ_TIMEOUT_S, "socket_connect_timeout": READ_TIMEOUT_S}
            sentinels = redis.sentinel.Sentinel(list(target.sentinels), sentinel_kwargs=timeouts)
            primary: redis.Redis = sentinels.master_for(target.service_name, db=target.db,
                                                        **timeouts)
            return primary
        return redis.Redis.from_url(url, socket_timeout=READ_TIMEOUT_S,
                                    socket_connect_timeout=READ_TIMEOUT_S)

    def _sqlite(self, name: str) -> sqlite3.Connection:
        # Read-only: on a full disk a reader must not try to write anything.
        path = self.deployment.data_dir / name
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=READ_TIMEOUT_S)


def wait_drained(backends: Backends, acknowledged: set[str], *, timeout_s: float) -> Snapshot:
    """Poll until the broker holds nothing and every acknowledged id is in the store;
    the last snapshot either way (the reconciliation says what is missing)."""
    deadline = time.monotonic() + timeout_s
    while True:
        snap = backends.snapshot()
        if not snap.held and acknowledged <= snap.stored_ids:
            return snap
        if time.monotonic() > deadline:
            return snap
        time.sleep(0.2)


class DepthMonitor:
    """Samples the broker's depth every `interval_s` in a thread: (monotonic time, depth
    or None when the broker could not be read)."""

    def __init__(self, backends: Backends, *, interval_s: float = 0.1) -> None:
        self._backends, self._interval_s = backends, interval_s
        self.samples: list[tuple[float, int | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="depth-monitor", daemon=True)

    def __enter__(self) -> DepthMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # a bench whose processes failed never started it
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                depth: int | None = self._backends.depth()
            except (redis.RedisError, sqlite3.Error, OSError):
                depth = None
            self.samples.append((time.monotonic(), depth))

    def max_depth(self, since: float = 0.0, until: float = float("inf")) -> int:
        return max((d for t, d in self.samples if d is not None and since <= t < until),
                   default=0)
