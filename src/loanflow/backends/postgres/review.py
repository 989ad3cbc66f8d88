"""The manual-review half of the PostgreSQL store: dead letters and the audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from loanflow.backends.postgres.pooled import Pooled
from loanflow.store import review
from loanflow.store.review import AuditEntry, DeadLetter, DeadLetterFilter, DeadLetterStatus

INSERT_DEAD_LETTER = (
    f"INSERT INTO dead_letters ({review.DEAD_LETTER_COLUMNS})"
    f" VALUES ({', '.join(f'${i}' for i in range(1, 17))})"
    + review.upsert_dead_letter("$17::bigint")
)
#: The audit action each resolution is recorded as.
ACTIONS = {DeadLetterStatus.REPLAYED: "replay", DeadLetterStatus.DISCARDED: "discard"}
_encode = msgspec.json.Encoder().encode


class PostgresReview(Pooled):
    """Dead letters and the audit trail. Every query here is built from an operator's
    request: `for_request=True`."""

    async def list_dead_letters(
        self, where: DeadLetterFilter, *, limit: int, cursor: str | None = None
    ) -> tuple[list[DeadLetter], str | None]:
        clause, params = review.where_sql(where, cursor, lambda n: f"${n}")
        async with self._connection("list_dead_letters", for_request=True) as conn:
            rows = await conn.fetch(
                f"SELECT {review.DEAD_LETTER_COLUMNS} FROM dead_letters{clause}"
                f" ORDER BY dead_lettered_at_ns DESC, id DESC LIMIT ${len(params) + 1}",
                *params, limit + 1,
            )
        return review.page([review.dead_letter_from_row(tuple(r)) for r in rows], limit)

    async def count_dead_letters(self, where: DeadLetterFilter) -> int:
        clause, params = review.where_sql(where, None, lambda n: f"${n}")
        async with self._connection("count_dead_letters", for_request=True) as conn:
            return int(await conn.fetchval(f"SELECT count(*) FROM dead_letters{clause}", *params))

    async def get_dead_letter(self, application_id: str) -> DeadLetter | None:
        if "\x00" in application_id:
            return None
        async with self._connection("get_dead_letter", for_request=True) as conn:
            row = await conn.fetchrow(
                f"SELECT {review.DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id = $1",
                application_id,
            )
        return None if row is None else review.dead_letter_from_row(tuple(row))

    async def resolve_dead_letter(
        self,
        application_id: str,
        *,
        seen_dead_lettered_at_ns: int,
        status: DeadLetterStatus,
        actor: str,
        at_ns: int,
        reason: str,
        detail: dict[str, Any],
    ) -> bool:
        async with self._transaction("resolve_dead_letter", for_request=True) as conn:
            changed = await conn.execute(
                "UPDATE dead_letters SET status = $1, resolved_at_ns = $2, resolved_by = $3,"
                " resolution = $4 WHERE id = $5 AND status = 'open'"
                " AND dead_lettered_at_ns = $6",
                status.value, at_ns, actor, reason, application_id, seen_dead_lettered_at_ns,
            )
            if changed == "UPDATE 0":
                return False
            await conn.execute(
                "UPDATE applications SET status = $1 WHERE id = $2 AND status = 'dead_lettered'",
                status.value, application_id,
            )
            await conn.execute(
                "INSERT INTO audit_log (at_ns, actor, action, target, detail)"
                " VALUES ($1, $2, $3, $4, $5)",
                at_ns, actor, ACTIONS[status], application_id, _encode(detail),
            )
        return True

    async def audit_of(self, target: str, *, limit: int) -> list[AuditEntry]:
        if "\x00" in target:
            return []  # text cannot hold NUL: no entry names such a target
        async with self._connection("audit_of", for_request=True) as conn:
            rows = await conn.fetch(
                "SELECT seq, at_ns, actor, action, target, detail FROM audit_log"
                " WHERE target = $1 ORDER BY seq LIMIT $2",
                target, limit,
            )
        return [
            AuditEntry(seq=r["seq"], at_ns=r["at_ns"], actor=r["actor"], action=r["action"],
                       target=r["target"], detail=msgspec.json.decode(r["detail"]))
            for r in rows
        ]

    async def record_audit(
        self, *, at_ns: int, actor: str, action: str, target: str, detail: dict[str, Any]
    ) -> None:
        async with self._connection("record_audit", for_request=True) as conn:
            await conn.execute(
                "INSERT INTO audit_log (at_ns, actor, action, target, detail)"
                " VALUES ($1, $2, $3, $4, $5)",
                at_ns, actor, action, target, _encode(detail),
            )

    async def audit_counts(self, since_ns: int) -> dict[str, int]:
        async with self._connection("audit_counts") as conn:
            rows = await conn.fetch(
                "SELECT action, count(*) AS n FROM audit_log WHERE at_ns >= $1 GROUP BY action",
                since_ns,
            )
        return {r["action"]: int(r["n"]) for r in rows}

    async def audit_trail(self, *, limit: int, before_seq: int | None = None) -> list[AuditEntry]:
        async with self._connection("audit_trail", for_request=True) as conn:
            rows = await conn.fetch(
                "SELECT seq, at_ns, actor, action, target, detail FROM audit_log"
                " WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
                before_seq if before_seq is not None else 2**62, limit,
            )
        return [
            AuditEntry(seq=r["seq"], at_ns=r["at_ns"], actor=r["actor"], action=r["action"],
                       target=r["target"], detail=msgspec.json.decode(r["detail"]))
            for r in rows
        ]


async def save_dead_letters(conn: Any, dead_letters: Sequence[DeadLetter]) -> set[str]:
    """In the caller's transaction; the ids of the letters written (see
    `review.upsert_dead_letter`). Attempts go as JSON bytes through the jsonb codec."""
    saved = set()
    for letter in dead_letters:  # few: one statement each, to learn which were written
        written = await conn.fetchval(INSERT_DEAD_LETTER, *review.dead_letter_row(letter))
        if written is not None:
            saved.add(written)
    return saved
