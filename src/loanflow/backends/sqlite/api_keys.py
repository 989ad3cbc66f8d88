"""The API-key part of the SQLite store: keys, and their lifecycle in the audit trail."""

from __future__ import annotations

import sqlite3

import msgspec

from loanflow.apikeys import ApiKey
from loanflow.backends.sqlite.database import SQLiteDatabase
from loanflow.store.api_keys import (
    KEY_COLUMNS,
    KEY_CREATED,
    KEY_REVOKED,
    created_detail,
    key_from_row,
    key_row,
)

_encode = msgspec.json.Encoder().encode
_AUDIT = "INSERT INTO audit_log (at_ns, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)"


class SQLiteApiKeys:
    """Mixed into SQLiteStore, which provides `_db`."""

    _db: SQLiteDatabase

    async def create_api_key(self, key: ApiKey, key_hash: str, *, actor: str) -> None:
        row = key_row(key, key_hash)
        audit = (key.created_at_ns, actor, KEY_CREATED, key.id, _encode(created_detail(key)))

        def create(conn: sqlite3.Connection) -> None:
            conn.execute(f"INSERT INTO api_keys (key_hash, {KEY_COLUMNS})"
                         " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
            conn.execute(_AUDIT, audit)

        await self._db.write(create)

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        row = await self._db.read(lambda conn: conn.execute(
            f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?", (key_hash,)).fetchone())
        return None if row is None else key_from_row(row)

    async def list_api_keys(self) -> list[ApiKey]:
        rows = await self._db.read(lambda conn: conn.execute(
            f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at_ns").fetchall())
        return [key_from_row(row) for row in rows]

    async def revoke_api_key(self, key_id: str, at_ns: int, *, actor: str) -> bool:
        def revoke(conn: sqlite3.Connection) -> bool:
            changed = conn.execute(
                "UPDATE api_keys SET revoked_at_ns = ? WHERE id = ? AND revoked_at_ns IS NULL",
                (at_ns, key_id)).rowcount
            if changed:
                conn.execute(_AUDIT, (at_ns, actor, KEY_REVOKED, key_id, _encode({})))
            return bool(changed)

        revoked: bool = await self._db.write(revoke)
        return revoked
