"""The embedded event log: its own WAL SQLite file (`events.db`), rows trimmed to EVENTS_KEPT."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from loanflow.backends.sqlite.database import SQLiteDatabase
from loanflow.metrics import names
from loanflow.metrics.events import Event, decode_events, encode_event
from loanflow.metrics.series_base import MetricsUnavailable

# NORMAL, not FULL: a display log may lose its last events on an OS crash.
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    body BLOB NOT NULL
);
"""


class SQLiteEventLog:
    def __init__(self, path: Path, *, kept: int = names.EVENTS_KEPT) -> None:
        self._db = SQLiteDatabase(path, unavailable=MetricsUnavailable, durable=False)
        self._kept = kept

    def __repr__(self) -> str:
        return f"SQLiteEventLog({str(self._db.path)!r})"

    async def open(self) -> None:
        self._db.open(SCHEMA)

    async def close(self) -> None:
        self._db.close()

    async def append(self, events: Sequence[Event]) -> None:
        if events:
            bodies = [(encode_event(e),) for e in events]
            await self._db.write(lambda conn: _append(conn, bodies, self._kept))

    async def read_since(self, cursor: str, *, limit: int = 1000) -> tuple[list[Event], str]:
        after = _seq(cursor)
        rows = await self._db.read(lambda conn: conn.execute(
            "SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
        ).fetchall())
        if not rows:
            return [], cursor
        return decode_events(body for _, body in rows), str(rows[-1][0])

    async def latest_cursor(self) -> str:
        row = await self._db.read(
            lambda conn: conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
        )
        return str(row[0])

    async def recent(self, limit: int) -> tuple[list[Event], str]:
        rows = await self._db.read(lambda conn: conn.execute(
            "SELECT seq, body FROM events ORDER BY seq DESC LIMIT ?", (limit,)
        ).fetchall())
        if not rows:
            return [], await self.latest_cursor()
        return decode_events(body for _, body in reversed(rows)), str(rows[0][0])


def _append(conn: sqlite3.Connection, bodies: list[tuple[bytes]], kept: int) -> None:
    conn.executemany("INSERT INTO events (body) VALUES (?)", bodies)
    newest = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
    conn.execute("DELETE FROM events WHERE seq <= ?", (newest - kept,))


def _seq(cursor: str) -> int:
    try:
        return int(cursor)
    except ValueError:
        raise ValueError(f"expected a cursor of this event log (digits), got {cursor!r}") from None
