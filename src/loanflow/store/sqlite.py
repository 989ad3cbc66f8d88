"""The embedded store: a WAL-mode SQLite file, separate from the broker's."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from loanflow.apikeys import ApiKey, Scope
from loanflow.embedded import SQLiteDatabase
from loanflow.errors import StoreUnavailable
from loanflow.store import migrations
from loanflow.store.base import ApplicationRecord

_COLUMNS = (
    "id, status, api_key_id, idempotency_key, channel, partner_id, external_id,"
    " received_at_ns, processed_at_ns, ssn_hash, pii_sealed, document,"
    " rules_version, product_version"
)
_KEY_COLUMNS = "id, label, scopes, created_at_ns, expires_at_ns, revoked_at_ns"


class SQLiteStore:
    def __init__(self, path: Path) -> None:
        self._db = SQLiteDatabase(path, unavailable=StoreUnavailable)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self._db.path)!r})"

    async def open(self) -> None:
        self._db.open()
        await self._db.write(_migrate)

    async def close(self) -> None:
        self._db.close()

    async def save_results(self, records: Sequence[ApplicationRecord]) -> None:
        rows = [
            (r.id, r.status, r.api_key_id, r.idempotency_key, r.channel, r.partner_id,
             r.external_id, r.received_at_ns, r.processed_at_ns, r.ssn_hash, r.pii_sealed,
             r.document, r.rules_version, r.product_version)
            for r in records
        ]
        await self._db.write(
            lambda conn: conn.executemany(
                f"INSERT INTO applications ({_COLUMNS}) VALUES ({', '.join('?' * 14)})"
                " ON CONFLICT (id) DO NOTHING",
                rows,
            )
        )

    async def get_application(self, application_id: str) -> ApplicationRecord | None:
        row = await self._db.read(
            lambda conn: conn.execute(
                f"SELECT {_COLUMNS} FROM applications WHERE id = ?", (application_id,)
            ).fetchone()
        )
        return None if row is None else ApplicationRecord(**dict(zip(_FIELDS, row, strict=True)))

    async def create_api_key(self, key: ApiKey, key_hash: str) -> None:
        row = (key.id, key_hash, key.label, ",".join(sorted(key.scopes)), key.created_at_ns,
               key.expires_at_ns, key.revoked_at_ns)
        await self._db.write(
            lambda conn: conn.execute(
                f"INSERT INTO api_keys (key_hash, {_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (row[1], row[0], *row[2:]),
            )
        )

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        row = await self._db.read(
            lambda conn: conn.execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_hash = ?", (key_hash,)
            ).fetchone()
        )
        return None if row is None else _api_key(row)

    async def list_api_keys(self) -> list[ApiKey]:
        rows = await self._db.read(
            lambda conn: conn.execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at_ns"
            ).fetchall()
        )
        return [_api_key(row) for row in rows]

    async def revoke_api_key(self, key_id: str, at_ns: int) -> bool:
        cur = await self._db.write(
            lambda conn: conn.execute(
                "UPDATE api_keys SET revoked_at_ns = ? WHERE id = ? AND revoked_at_ns IS NULL",
                (at_ns, key_id),
            )
        )
        return bool(cur.rowcount)

    async def ping(self) -> None:
        await self._db.read(lambda conn: conn.execute("SELECT 1").fetchone())


_FIELDS = [name.strip() for name in _COLUMNS.split(",")]


def _api_key(row: tuple[object, ...]) -> ApiKey:
    key_id, label, scopes, created, expires, revoked = row
    return ApiKey(
        id=str(key_id),
        label=str(label),
        scopes=frozenset(Scope(s) for s in str(scopes).split(",")),
        created_at_ns=int(created),  # type: ignore[call-overload]
        expires_at_ns=None if expires is None else int(expires),  # type: ignore[call-overload]
        revoked_at_ns=None if revoked is None else int(revoked),  # type: ignore[call-overload]
    )


def _migrate(conn: sqlite3.Connection) -> int:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ns INTEGER NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    applied = 0
    for migration in migrations.load("sqlite"):
        if migration.version in done:
            continue
        # executescript would commit the group's transaction; run statement by statement.
        for statement in _statements(migration.sql):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?, ?, ?)",
            (migration.version, migration.name, time.time_ns()),
        )
        applied += 1
    return applied


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
