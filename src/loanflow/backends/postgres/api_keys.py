"""The API-key part of the PostgreSQL store: keys, and their lifecycle in the audit trail."""

from __future__ import annotations

import msgspec

from loanflow.apikeys import ApiKey
from loanflow.backends.postgres.pooled import Pooled
from loanflow.store.api_keys import (
    KEY_COLUMNS,
    KEY_CREATED,
    KEY_REVOKED,
    created_detail,
    key_from_row,
    key_row,
)

_encode = msgspec.json.Encoder().encode
_AUDIT = "INSERT INTO audit_log (at_ns, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)"


class PostgresApiKeys(Pooled):
    """API keys, kept by the hash of their secret."""

    async def create_api_key(self, key: ApiKey, key_hash: str, *, actor: str) -> None:
        async with self._transaction("create_api_key") as conn:
            await conn.execute(f"INSERT INTO api_keys (key_hash, {KEY_COLUMNS})"
                               " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                               *key_row(key, key_hash))
            await conn.execute(_AUDIT, key.created_at_ns, actor, KEY_CREATED, key.id,
                               _encode(created_detail(key)))

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        if "\x00" in key_hash:
            return None
        async with self._connection("find_api_key") as conn:
            row = await conn.fetchrow(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1", key_hash)
        return None if row is None else key_from_row(row)

    async def list_api_keys(self) -> list[ApiKey]:
        async with self._connection("list_api_keys") as conn:
            rows = await conn.fetch(f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at_ns")
        return [key_from_row(row) for row in rows]

    async def revoke_api_key(self, key_id: str, at_ns: int, *, actor: str) -> bool:
        async with self._transaction("revoke_api_key") as conn:
            status = await conn.execute(
                "UPDATE api_keys SET revoked_at_ns = $1 WHERE id = $2 AND revoked_at_ns IS NULL",
                at_ns, key_id)
            revoked: bool = status != "UPDATE 0"
            if revoked:
                await conn.execute(_AUDIT, at_ns, actor, KEY_REVOKED, key_id, _encode({}))
        return revoked
