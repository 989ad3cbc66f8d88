"""The embedded metrics series: its own WAL SQLite file (`metrics.db`), written by group commit.

Every process of one host writes its deltas into the same file; the upserts
merge them per second, so a read is one range scan. `synchronous=NORMAL`
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

from loanflow.embedded import SQLiteDatabase
from loanflow.metrics import names
from loanflow.metrics.series_base import RETENTION_S, MetricsUnavailable, TaggedDelta
from loanflow.metrics.tally import Tally, flatten, unflatten

SCHEMA = """
PRAGMA synchronous=NORMAL;
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
        self._db = SQLiteDatabase(path, unavailable=MetricsUnavailable)

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
        horizon_s = max(d.second for d in deltas) - RETENTION_S
        return await self._db.write(lambda conn: _write(conn, rows, horizon_s))

    async def read_seconds(self, first_s: int, last_s: int) -> dict[int, Tally]:
        rows = await self._db.read(
            lambda conn: conn.execute(
                "SELECT second, field, value FROM second_fields "
                "WHERE second BETWEEN ? AND ? ORDER BY second",
                (first_s, last_s),
            ).fetchall()
        )
        by_second: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for second, field, value in rows:
            by_second[second].append((field, value))
        return {second: unflatten(fields) for second, fields in by_second.items()}

    async def read_totals(self, *, histograms: bool = True) -> Tally:
        sql, args = "SELECT field, value FROM totals", cast(tuple[str, ...], ())
        if not histograms:
            sql += " WHERE field >= ? AND field < ?"
            args = _COUNTER_RANGE
        rows = await self._db.read(lambda conn: conn.execute(sql, args).fetchall())
        return unflatten(rows)


_Row = tuple[str, int, int, list[tuple[str, int]], list[tuple[str, int]]]


def _write(conn: sqlite3.Connection, rows: list[_Row], horizon_s: int) -> int:
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
    conn.execute("DELETE FROM second_fields WHERE second < ?", (horizon_s,))
    conn.execute("DELETE FROM flushes WHERE second < ?", (horizon_s,))
    return applied
