"""The sealed PII of the PostgreSQL store, for the key's rotation (store/sealed.py)."""

from __future__ import annotations

from collections.abc import Sequence

from loanflow.backends.postgres.pooled import Pooled
from loanflow.store import sealed
from loanflow.store.sealed import SealedChange, SealedWindow

#: How long the count of every application's key may run: a whole-table read, beyond
#: the store's statement timeout, for an operator who asked for it.
COUNT_TIMEOUT_S = 600.0

_WINDOW = sealed.window_sql(lambda n: f"${n}")
_DEAD_LETTERS = sealed.dead_letters_sql(lambda n: f"${n}")
_SAMPLES = sealed.samples_sql(lambda n: f"${n}")
#: Each batch locks its rows in id order, as a processor's batch write does (sorted by
#: id), and a redelivered batch locks rows it leaves unchanged (ON CONFLICT … WHERE):
#: two writers that lock in one order cannot deadlock.
_LOCK = "SELECT 1 FROM {table} WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE"
#: After the lock, the comparison is with the committed value.
_REPLACE = (
    "UPDATE {table} AS t SET {column} = c.new"
    " FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS c(id, old, new)"
    " WHERE t.id = c.id AND t.{column} = c.old RETURNING t.id"
)


class PostgresSealed(Pooled):
    """Mixed into PostgresStore. An operator's command reads and writes here, never a
    request: errors are StoreUnavailable."""

    async def count_sealed_applications(self) -> dict[str, int]:
        async with self._transaction("count_sealed_applications") as conn:
            await conn.execute("SELECT set_config('statement_timeout', $1, true)",
                               f"{int(COUNT_TIMEOUT_S)}s")
            rows = await conn.fetch(sealed.count_sql(), timeout=COUNT_TIMEOUT_S + 1)
        return sealed.key_counts([tuple(row) for row in rows])

    async def sealed_applications(
        self, *, after_id: str, window: int, current_key_id: str
    ) -> SealedWindow:
        async with self._connection("sealed_applications") as conn:
            rows = await conn.fetch(_WINDOW, after_id, window, bytes.fromhex(current_key_id))
        return sealed.window_from_rows([tuple(row) for row in rows])

    async def replace_sealed_applications(self, changes: Sequence[SealedChange]) -> list[str]:
        return await self._replace("applications", "pii_sealed", changes)

    async def dead_letter_envelopes(self, *, after_id: str, limit: int) -> list[tuple[str, bytes]]:
        async with self._connection("dead_letter_envelopes") as conn:
            rows = await conn.fetch(_DEAD_LETTERS, after_id, limit)
        return [(row["id"], bytes(row["envelope"])) for row in rows]

    async def replace_dead_letter_envelopes(self, changes: Sequence[SealedChange]) -> list[str]:
        return await self._replace("dead_letters", "envelope", changes)

    async def ssn_hash_samples(
        self, *, since_ns: int, limit: int
    ) -> list[tuple[str, str, bytes]]:
        async with self._connection("ssn_hash_samples") as conn:
            rows = await conn.fetch(_SAMPLES, since_ns, limit)
        return [(row["id"], row["ssn_hash"], bytes(row["pii_sealed"])) for row in rows]

    async def _replace(
        self, table: str, column: str, changes: Sequence[SealedChange]
    ) -> list[str]:
        if not changes:
            return []
        ids = [c.id for c in changes]
        async with self._transaction(f"replace {table}.{column}") as conn:
            await conn.execute(_LOCK.format(table=table), ids)
            rows = await conn.fetch(_REPLACE.format(table=table, column=column),
                                    ids, [c.old for c in changes], [c.new for c in changes])
        return [row["id"] for row in rows]
