"""The embedded broker: a WAL-mode SQLite file with group commit.

The idempotency key is claimed in the same transaction as the append, so a
202 (after commit) means both are on disk, and a refused request leaves no
trace. Leases and acks are committed without waiting for the disk: an
operating-system crash that undoes one only delivers its applications again,
and the store writes a result once per id. Not waiting keeps the file's write
lock, which the API's appends need, free for shorter (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import msgspec

from loanflow.backends.sqlite.database import SQLiteDatabase
from loanflow.backends.sqlite.holders import Holders
from loanflow.broker.activity import Activity
from loanflow.broker.base import (
    IDEMPOTENCY_TTL_S,
    AppendOutcome,
    AppendResult,
    Delivery,
    RateLimit,
    Submission,
)
from loanflow.broker.buckets import TokenBuckets
from loanflow.errors import BrokerUnavailable
from loanflow.models import Envelope, envelope_key_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    application_id  TEXT NOT NULL UNIQUE,
    envelope        BLOB NOT NULL,
    available_at_ns INTEGER NOT NULL,
    lease_until_ns  INTEGER NOT NULL DEFAULT 0,
    deliveries      INTEGER NOT NULL DEFAULT 0,
    -- Only ever grows (deliveries may go back on a release): fences stale holders.
    lease_no        INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    api_key_id      TEXT NOT NULL,
    key             TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    application_id  TEXT NOT NULL,
    received_at_ns  INTEGER NOT NULL,
    PRIMARY KEY (api_key_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_keys_age ON idempotency_keys (received_at_ns);
"""

#: Not fenced: the result is stored, so the envelope is done whoever holds it now.
ACK_SQL = "DELETE FROM messages WHERE seq = ?"

#: Claims a key, or one past the window (the 6th parameter, in ns) that the janitor (every
#: JANITOR_INTERVAL_S) has not deleted yet: the age is checked on lookup, so no key
#: outlives the window.
CLAIM_KEY_SQL = (
    "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (api_key_id, key) DO UPDATE SET fingerprint = excluded.fingerprint,"
    " application_id = excluded.application_id, received_at_ns = excluded.received_at_ns"
    " WHERE idempotency_keys.received_at_ns < excluded.received_at_ns - ?"
)

#: An idle consumer's poll: how late it may see a replay from another process, a due
#: retry or an expired lease.
IDLE_POLL_S = 0.1

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Envelope).decode
log = logging.getLogger(__name__)


class SQLiteBroker:
    #: Every commit is fsync'd before its callers hear back (backends/sqlite/database.py).
    durability = "sqlite synchronous=FULL"

    def __init__(
        self, path: Path, *, visibility_timeout_s: float, poll_interval_s: float = 0.01,
        idempotency_window_s: int = IDEMPOTENCY_TTL_S,
    ) -> None:
        if idempotency_window_s < 1:
            raise ValueError(f"expected idempotency_window_s >= 1, got {idempotency_window_s}")
        self._db = SQLiteDatabase(path, unavailable=BrokerUnavailable)
        self._window_ns = idempotency_window_s * 1_000_000_000
        self._visibility_ns = int(visibility_timeout_s * 1e9)
        self._poll_interval_s = poll_interval_s
        self._activity = Activity()
        self._buckets = TokenBuckets()
        self._holders = Holders(path.with_suffix(".lock"))

    def __repr__(self) -> str:
        return f"SQLiteBroker({str(self._db.path)!r})"

    async def open(self) -> None:
        self._db.open(SCHEMA)
        try:
            if self._holders.enter():  # every earlier holder is gone: nobody alive holds work
                handed_back = await self._db.write(_hand_back_every_lease)
                self._holders.share()
                if handed_back:
                    log.warning("handed back %d applications reserved by a process that is"
                                " gone", handed_back)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        self._db.close()
        self._holders.leave()

    async def append(self, submissions: Sequence[Submission]) -> list[AppendResult]:
        rows = [
            (s.envelope.api_key_id, s.envelope.idempotency_key, s.fingerprint,
             s.envelope.id, s.envelope.received_at_ns, _encode(s.envelope), s.rate_limit)
            for s in submissions
        ]
        return await self._db.write(
            lambda conn: _append(conn, rows, self._buckets, self._window_ns))

    async def requeue(self, envelopes: Sequence[Envelope]) -> None:
        rows = [(e.id, _encode(e), time.time_ns()) for e in envelopes]

        def replace(conn: sqlite3.Connection) -> None:
            # A row still held (the dead-lettered delivery whose ack is pending) goes: the
            # new row's new seq fences that holder's late ack, retry and release.
            conn.executemany("DELETE FROM messages WHERE application_id = ?",
                             [(row[0],) for row in rows])
            conn.executemany(
                "INSERT INTO messages (application_id, envelope, available_at_ns)"
                " VALUES (?, ?, ?)",
                rows,
            )

        await self._db.write(replace)

    async def reserve(
        self, max_count: int, *, consumer: str, ack: Sequence[Delivery] = ()
    ) -> list[Delivery]:
        now = time.time_ns()
        lease_until = now + self._visibility_ns
        # A read first: an idle poll must not take the write lock the API appends need.
        ready = await self._db.read(
            lambda conn: conn.execute(
                "SELECT 1 FROM messages WHERE available_at_ns <= ? AND lease_until_ns <= ?"
                " LIMIT 1",
                (now, now),
            ).fetchone()
        )
        if ready is None or max_count < 1:
            await self.ack(ack)
            return []
        acked = _seqs(ack)

        def take(conn: sqlite3.Connection) -> list[tuple[int, bytes, int, int]]:
            # The acks in the same transaction: one commit (fsync) for both.
            conn.executemany(ACK_SQL, acked)
            rows: list[tuple[int, bytes, int, int]] = conn.execute(
                "UPDATE messages SET lease_until_ns = ?, deliveries = deliveries + 1,"
                " lease_no = lease_no + 1"
                " WHERE seq IN (SELECT seq FROM messages"
                "   WHERE available_at_ns <= ? AND lease_until_ns <= ? ORDER BY seq LIMIT ?)"
                " RETURNING seq, envelope, deliveries, lease_no",
                (lease_until, now, now, max_count),
            ).fetchall()
            return rows

        rows = await self._db.write(take, durable=False)
        if rows:
            self._activity.worked(consumer)
        rows.sort()
        return [Delivery(_token(seq, lease), _decode(blob), n) for seq, blob, n, lease in rows]

    async def wait_for_work(self, consumer: str, *, wake: asyncio.Event | None = None) -> None:
        # SQLite cannot notify: this process's appends set `wake`; anything else (another
        # process's replay, a due retry, an expired lease) is found by the next poll,
        # a longer one once idle (a poll every 10 ms cost an idle service 7% of a core).
        poll_s = self._poll_interval_s
        if self._activity.idle(consumer):
            poll_s = max(poll_s, IDLE_POLL_S)
        if wake is None:
            await asyncio.sleep(poll_s)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), poll_s)
        wake.clear()

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        seqs = _seqs(deliveries)
        await self._db.write(lambda conn: conn.executemany(ACK_SQL, seqs), durable=False)

    async def retry_later(self, delivery: Delivery, envelope: Envelope, delay_s: float) -> None:
        blob, at = _encode(envelope), time.time_ns() + int(delay_s * 1e9)
        await self._db.write(
            lambda conn: conn.execute(
                "UPDATE messages SET envelope = ?, available_at_ns = ?, lease_until_ns = 0"
                " WHERE seq = ? AND lease_no = ?",
                (blob, at, *_fence(delivery)),
            )
        )

    async def release(self, deliveries: Sequence[Delivery], delay_s: float) -> None:
        at = time.time_ns() + int(delay_s * 1e9)
        rows = [(at, *_fence(d)) for d in deliveries]
        await self._db.write(
            lambda conn: conn.executemany(
                "UPDATE messages SET available_at_ns = ?, lease_until_ns = 0,"
                " deliveries = deliveries - 1 WHERE seq = ? AND lease_no = ?",
                rows,
            )
        )

    async def pending_state(self, application_id: str) -> tuple[str, int] | None:
        row = await self._db.read(
            lambda conn: conn.execute(
                "SELECT lease_until_ns, envelope FROM messages WHERE application_id = ?",
                (application_id,),
            ).fetchone()
        )
        if row is None:
            return None
        state = "processing" if row[0] > time.time_ns() else "queued"
        return state, _decode(row[1]).received_at_ns

    async def depth(self) -> int:
        row = await self._db.read(
            lambda conn: conn.execute("SELECT count(*) FROM messages").fetchone()
        )
        return int(row[0])

    async def sealed_key_counts(self) -> dict[str, int]:
        def count(conn: sqlite3.Connection) -> dict[str, int]:
            # One read transaction: a snapshot, nothing moved meanwhile.
            return dict(Counter(envelope_key_id(blob)
                                for (blob,) in conn.execute("SELECT envelope FROM messages")))

        return await self._db.read(count)

    async def oldest_wait_s(self) -> float | None:
        now = time.time_ns()
        # In seq order the first due row is nearly always the first row: no scan.
        row = await self._db.read(
            lambda conn: conn.execute(
                "SELECT available_at_ns FROM messages WHERE available_at_ns <= ?"
                " ORDER BY seq LIMIT 1",
                (now,),
            ).fetchone()
        )
        return None if row is None else (now - int(row[0])) / 1e9

    async def ping(self) -> None:
        await self._db.read(lambda conn: conn.execute("SELECT 1").fetchone())

    async def expire_idempotency_keys(self, now_ns: int | None = None) -> int:
        """Forget keys older than the idempotency window; returns how many."""
        cutoff = (now_ns or time.time_ns()) - self._window_ns
        cur = await self._db.write(
            lambda conn: conn.execute(
                "DELETE FROM idempotency_keys WHERE received_at_ns < ?", (cutoff,)
            )
        )
        return int(cur.rowcount)


def _hand_back_every_lease(conn: sqlite3.Connection) -> int:
    # Deliveries stay counted, as when a lease runs out: the holder may have died of one.
    cur = conn.execute("UPDATE messages SET lease_until_ns = 0 WHERE lease_until_ns > ?",
                       (time.time_ns(),))
    return int(cur.rowcount)


def _token(seq: int, lease_no: int) -> str:
    # The lease number fences a holder whose lease ran out: once the envelope is
    # handed out again, the late holder's release or retry matches no row.
    return f"{seq}:{lease_no}"


def _seqs(deliveries: Sequence[Delivery]) -> list[tuple[int]]:
    return [(int(d.token.partition(":")[0]),) for d in deliveries]


def _fence(delivery: Delivery) -> tuple[int, int]:
    seq, _, lease_no = delivery.token.partition(":")
    return int(seq), int(lease_no)


def _append(
    conn: sqlite3.Connection,
    rows: list[tuple[str, str, str, str, int, bytes, RateLimit | None]],
    buckets: TokenBuckets,
    window_ns: int,
) -> list[AppendResult]:
    """In the writer thread, which alone touches `buckets`: a key's limit is taken
    after its claim was found free, in the same transaction, as the Redis script does."""
    results = []
    for api_key_id, key, fingerprint, app_id, received_at_ns, blob, limit in rows:
        if limit is not None and not _claimed(conn, api_key_id, key, received_at_ns, window_ns):
            wait_s = buckets.take(limit.bucket, 1, rate_per_s=limit.rate_per_s,
                                  burst=limit.burst, now_s=time.monotonic())
            if wait_s:
                results.append(AppendResult(AppendOutcome.RATE_LIMITED, app_id, received_at_ns,
                                            retry_after_s=wait_s))
                continue
        claimed = conn.execute(
            CLAIM_KEY_SQL, (api_key_id, key, fingerprint, app_id, received_at_ns, window_ns),
        ).rowcount
        if claimed:
            conn.execute(
                "INSERT INTO messages (application_id, envelope, available_at_ns) VALUES (?, ?, ?)",
                (app_id, blob, received_at_ns),
            )
            results.append(AppendResult(AppendOutcome.ACCEPTED, app_id, received_at_ns))
            continue
        prior_fp, prior_id, prior_at = conn.execute(
            "SELECT fingerprint, application_id, received_at_ns FROM idempotency_keys"
            " WHERE api_key_id = ? AND key = ?",
            (api_key_id, key),
        ).fetchone()
        outcome = AppendOutcome.REPLAYED if prior_fp == fingerprint else AppendOutcome.KEY_REUSED
        results.append(AppendResult(outcome, prior_id, prior_at))
    return results


def _claimed(
    conn: sqlite3.Connection, api_key_id: str, key: str, now_ns: int, window_ns: int
) -> bool:
    """Whether the key is held: claimed within the window (as CLAIM_KEY_SQL judges)."""
    return conn.execute(
        "SELECT 1 FROM idempotency_keys WHERE api_key_id = ? AND key = ?"
        " AND received_at_ns >= ?",
        (api_key_id, key, now_ns - window_ns)).fetchone() is not None
