"""The sealed PII of the SQLite store, for the key's rotation (store/sealed.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from loanflow.backends.sqlite.database import SQLiteDatabase
from loanflow.store import sealed
from loanflow.store.sealed import SealedChange, SealedWindow

_WINDOW = sealed.window_sql(lambda n: "?")
_DEAD_LETTERS = sealed.dead_letters_sql(lambda n: "?")
_SAMPLES = sealed.samples_sql(lambda n: "?")


class SQLiteSealed:
    """Mixed into SQLiteStore, which provides `_db`. Replacements go through its one
    writer: each batch is a savepoint of a group commit, whole or not at all."""

    _db: SQLiteDatabase

    async def count_sealed_applications(self) -> dict[str, int]:
        rows = await self._db.read(lambda conn: conn.execute(sealed.count_sql()).fetchall())
        return sealed.key_counts(rows)

    async def sealed_applications(
        self, *, after_id: str, window: int, current_key_id: str
    ) -> SealedWindow:
        params = (after_id, window, bytes.fromhex(current_key_id))
        rows = await self._db.read(lambda conn: conn.execute(_WINDOW, params).fetchall())
        return sealed.window_from_rows(rows)

    async def replace_sealed_applications(self, changes: Sequence[SealedChange]) -> list[str]:
        return await self._replace(
            "UPDATE applications SET pii_sealed = ? WHERE id = ? AND pii_sealed = ?", changes)

    async def dead_letter_envelopes(self, *, after_id: str, limit: int) -> list[tuple[str, bytes]]:
        rows = await self._db.read(
            lambda conn: conn.execute(_DEAD_LETTERS, (after_id, limit)).fetchall())
        return [(str(i), bytes(envelope)) for i, envelope in rows]

    async def replace_dead_letter_envelopes(self, changes: Sequence[SealedChange]) -> list[str]:
        return await self._replace(
            "UPDATE dead_letters SET envelope = ? WHERE id = ? AND envelope = ?", changes)

    async def ssn_hash_samples(
        self, *, since_ns: int, limit: int
    ) -> list[tuple[str, str, bytes]]:
        rows = await self._db.read(
            lambda conn: conn.execute(_SAMPLES, (since_ns, limit, since_ns, limit)).fetchall())
        return [(str(i), str(h), bytes(v)) for i, h, v in rows]

    async def _replace(self, sql: str, changes: Sequence[SealedChange]) -> list[str]:
        if not changes:
            return []

        def replace(conn: sqlite3.Connection) -> list[str]:
            return [c.id for c in changes if conn.execute(sql, (c.new, c.id, c.old)).rowcount]

        return await self._db.write(replace)
