"""Velocity counts in the embedded store's SQLite file: table `velocity` (migration 0003).

One write per batch records the observations (INSERT OR IGNORE: a redelivered
application counts once), counts each one's window on the primary key, and forgets
rows older than KEEP_WINDOWS windows. It goes through the store's own writer (one per
file per process: two would take turns on the file's lock) as a write that need not
be durable: the counts are derived data, and a commit an OS crash undoes costs at
most a missed flag, never an application. The store opens and closes the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from loanflow.backends.sqlite.database import SQLiteDatabase
from loanflow.errors import Unavailable
from loanflow.pipeline.velocity import KEEP_WINDOWS, Observation, VelocityUnavailable

_INSERT = "INSERT OR IGNORE INTO velocity (key, at_us, application_id) VALUES (?, ?, ?)"
_COUNT = "SELECT count(*) FROM velocity WHERE key = ? AND at_us > ? AND at_us <= ?"
_PRUNE = "DELETE FROM velocity WHERE at_us < ?"


class SQLiteVelocityCounter:
    def __init__(self, store_database: SQLiteDatabase) -> None:
        self._db = store_database

    def __repr__(self) -> str:
        return f"SQLiteVelocityCounter({str(self._db.path)!r})"

    async def open(self) -> None:
        """Check the table: the store's open (first) opened the file and migrated it."""
        try:
            await self._db.read(
                lambda conn: conn.execute("SELECT 1 FROM velocity LIMIT 0").fetchall())
        except (Unavailable, sqlite3.Error) as exc:
            raise VelocityUnavailable(f"{self._db.path.name}: {exc}") from exc

    async def close(self) -> None:
        """Nothing of its own: the store closes the file."""

    async def observe(
        self, observations: Sequence[Observation], *, window_us: int, now_us: int
    ) -> list[int]:
        if not observations:
            return []
        rows = [(o.key, o.at_us, o.application_id) for o in observations]
        keep_after_us = now_us - KEEP_WINDOWS * window_us

        def observe(conn: sqlite3.Connection) -> list[int]:
            conn.executemany(_INSERT, rows)
            counts = [
                int(conn.execute(_COUNT, (o.key, o.at_us - window_us, o.at_us)).fetchone()[0])
                for o in observations
            ]
            conn.execute(_PRUNE, (keep_after_us,))
            return counts

        try:
            return await self._db.write(observe, durable=False)
        except Unavailable as exc:  # the store's file: said as the velocity check's outage
            raise VelocityUnavailable(str(exc)) from exc
