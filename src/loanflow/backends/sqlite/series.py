"""The embedded metrics series: its own WAL SQLite file (`metrics.db`), written by group commit.

Every process of one host writes its deltas into the same file; the upserts
merge them per second (`second_fields`), so a read is one range scan. A
roll-up packs each finished minute's seconds into one row each
(`seconds_packed`) plus one row for the minute (`minutes`), in one
transaction, and prunes what is past its retention. `synchronous=NORMAL`
here, unlike the broker: metrics are not the record of truth, a WAL commit
still survives a process crash, and a lost last second on an OS crash is an
acceptable price for not paying an fsync per process per second.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from loanflow.backends.sqlite.database import SQLiteDatabase
from loanflow.metrics import names
from loanflow.metrics.series_base import (
    FLUSH_DEDUP_S,
    MINUTE_RETENTION_S,
    MINUTE_S,
    SECOND_RETENTION_S,
    MetricsUnavailable,
    TaggedDelta,
)
from loanflow.metrics.tally import Tally, flatten, merge_into, merged, pack, unflatten, unpack

SCHEMA = """
CREATE TABLE IF NOT EXISTS flushes (
    process TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    second  INTEGER NOT NULL,
    PRIMARY KEY (process, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS flushes_second ON flushes (second);
CREATE TABLE IF NOT EXISTS second_fields (
    second INTEGER NOT NULL,
    field  TEXT NOT NULL,
    value  INTEGER NOT NULL,
    PRIMARY KEY (second, field)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seconds_packed (
    second INTEGER PRIMARY KEY,
    tally  BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS minutes (
    minute INTEGER PRIMARY KEY,
    tally  BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS totals (
    field TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""

_ADD_SECOND = (
    "INSERT INTO second_fields (second, field, value) VALUES (?, ?, ?) "
    "ON CONFLICT (second, field) DO UPDATE SET value = value + excluded.value"
)
_MAX_SECOND = (
    "INSERT INTO second_fields (second, field, value) VALUES (?, ?, ?) "
    "ON CONFLICT (second, field) DO UPDATE SET value = max(value, excluded.value)"
)
_ADD_TOTAL = (
    "INSERT INTO totals (field, value) VALUES (?, ?) "
    "ON CONFLICT (field) DO UPDATE SET value = value + excluded.value"
)
# Counter fields sort between 'c:' and 'c;' (';' follows ':'), a range on the key.
_COUNTER_RANGE = (names.FIELD_COUNTER, names.FIELD_COUNTER[:-1] + ";")


class SQLiteSeries:
    def __init__(self, path: Path) -> None:
        self._db = SQLiteDatabase(path, unavailable=MetricsUnavailable, durable=False)

    def __repr__(self) -> str:
        return f"SQLiteSeries({str(self._db.path)!r})"

    async def open(self) -> None:
        self._db.open(SCHEMA)

    async def close(self) -> None:
        self._db.close()

    async def write(self, deltas: Sequence[TaggedDelta]) -> int:
        if not deltas:
            return 0
        rows = [(d.process, d.seq, d.second, *flatten(d.tally)) for d in deltas]
        newest_s = max(d.second for d in deltas)
        return await self._db.write(lambda conn: _write(conn, rows, newest_s))

    async def read_seconds(self, first_s: int, last_s: int) -> dict[int, Tally]:
        def read(conn: sqlite3.Connection) -> tuple[list[tuple[int, bytes]], list[_Field]]:
            # One snapshot (a read transaction): a roll-up moving rows between the
            # two tables cannot make a second appear twice or not at all.
            conn.execute("BEGIN")
            try:
                packed = conn.execute(
                    "SELECT second, tally FROM seconds_packed WHERE second BETWEEN ? AND ?",
                    (first_s, last_s)).fetchall()
                fresh = conn.execute(
                    "SELECT second, field, value FROM second_fields "
                    "WHERE second BETWEEN ? AND ? ORDER BY second", (first_s, last_s)).fetchall()
            finally:
                conn.execute("COMMIT")
            return packed, fresh

        packed, fresh = await self._db.read(read)
        tallies = {second: unpack(blob) for second, blob in packed}
        for second, tally in _by_second(fresh).items():
            # Fields of a second that was packed already: a flush later than the roll-up.
            tallies[second] = merge_into(tallies[second], tally) if second in tallies else tally
        return tallies

    async def roll_up(self, minutes: Sequence[int]) -> list[int]:
        if not minutes:
            return []
        return await self._db.write(lambda conn: _roll_up(conn, sorted(set(minutes))))

    async def read_minutes(self, first_s: int, last_s: int) -> dict[int, Tally]:
        rows = await self._db.read(
            lambda conn: conn.execute(
                "SELECT minute, tally FROM minutes WHERE minute BETWEEN ? AND ?",
                (first_s, last_s),
            ).fetchall()
        )
        return {minute: unpack(blob) for minute, blob in rows}

    async def read_totals(self, *, histograms: bool = True) -> Tally:
        sql, args = "SELECT field, value FROM totals", cast(tuple[str, ...], ())
        if not histograms:
            sql += " WHERE field >= ? AND field < ?"
            args = _COUNTER_RANGE
        rows = await self._db.read(lambda conn: conn.execute(sql, args).fetchall())
        return unflatten(rows)


_Row = tuple[str, int, int, list[tuple[str, int]], list[tuple[str, int]]]
_Field = tuple[int, str, int]


def _by_second(rows: list[_Field]) -> dict[int, Tally]:
    by_second: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for second, field, value in rows:
        by_second[second].append((field, value))
    return {second: unflatten(fields) for second, fields in by_second.items()}


def _write(conn: sqlite3.Connection, rows: list[_Row], newest_s: int) -> int:
    applied = 0
    for process, seq, second, added, maxed in rows:
        claimed = conn.execute(
            "INSERT OR IGNORE INTO flushes (process, seq, second) VALUES (?, ?, ?)",
            (process, seq, second),
        )
        if claimed.rowcount == 0:
            continue  # already applied: this is a retry whose first reply was lost
        conn.executemany(_ADD_SECOND, [(second, f, v) for f, v in added])
        conn.executemany(_MAX_SECOND, [(second, f, v) for f, v in maxed])
        conn.executemany(_ADD_TOTAL, added)
        applied += 1
    # Unrolled seconds too are bounded (no process rolled them up: they were never read).
    conn.execute("DELETE FROM second_fields WHERE second < ?", (newest_s - SECOND_RETENTION_S,))
    conn.execute("DELETE FROM flushes WHERE second < ?", (newest_s - FLUSH_DEDUP_S,))
    return applied


def _roll_up(conn: sqlite3.Connection, minutes: list[int]) -> list[int]:
    """In the writer's transaction: processes of the host roll up one after another."""
    done = {row[0] for row in conn.execute(
        "SELECT minute FROM minutes WHERE minute BETWEEN ? AND ?", (minutes[0], minutes[-1]))}
    rolled = []
    for minute in minutes:
        if minute in done:
            continue
        last_s = minute + MINUTE_S - 1
        seconds = _by_second(conn.execute(
            "SELECT second, field, value FROM second_fields WHERE second BETWEEN ? AND ? "
            "ORDER BY second", (minute, last_s)).fetchall())
        conn.executemany("INSERT OR REPLACE INTO seconds_packed (second, tally) VALUES (?, ?)",
                         [(second, pack(tally)) for second, tally in seconds.items()])
        conn.execute("DELETE FROM second_fields WHERE second BETWEEN ? AND ?", (minute, last_s))
        conn.execute("INSERT INTO minutes (minute, tally) VALUES (?, ?)",
                     (minute, pack(merged(seconds.values()))))
        rolled.append(minute)
    newest_s = minutes[-1] + MINUTE_S
    conn.execute("DELETE FROM seconds_packed WHERE second < ?", (newest_s - SECOND_RETENTION_S,))
    conn.execute("DELETE FROM minutes WHERE minute < ?", (newest_s - MINUTE_RETENTION_S,))
    return rolled
