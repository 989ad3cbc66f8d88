"""The embedded store: a WAL-mode SQLite file, separate from the broker's."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from loanflow.backends.sqlite.api_keys import SQLiteApiKeys
from loanflow.backends.sqlite.database import SQLiteDatabase
from loanflow.backends.sqlite.export import SQLiteExport
from loanflow.backends.sqlite.logins import SQLiteLogins
from loanflow.backends.sqlite.review_queue import SQLiteReviewQueue
from loanflow.backends.sqlite.sealed import SQLiteSealed
from loanflow.errors import StoreUnavailable
from loanflow.store import migrations, review, review_queue, search
from loanflow.store.base import ApplicationRecord
from loanflow.store.review import AuditEntry, DeadLetter, DeadLetterFilter, DeadLetterStatus

_COLUMNS = (
    "id, status, api_key_id, idempotency_key, channel, partner_id, external_id,"
    " received_at_ns, processed_at_ns, ssn_hash, pii_sealed, document,"
    " rules_version, product_version, route"
)


class SQLiteStore(SQLiteApiKeys, SQLiteReviewQueue, SQLiteExport, SQLiteLogins, SQLiteSealed):
    def __init__(self, path: Path) -> None:
        self._db = SQLiteDatabase(path, unavailable=StoreUnavailable)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self._db.path)!r})"

    @property
    def database(self) -> SQLiteDatabase:
        """The file's one writer in this process, for what else lives in it (velocity)."""
        return self._db

    async def open(self) -> None:
        self._db.open()
        await self._db.write(_migrate)

    async def close(self) -> None:
        self._db.close()

    async def save_results(
        self, records: Sequence[ApplicationRecord], dead_letters: Sequence[DeadLetter] = ()
    ) -> None:
        letters = [review.dead_letter_row(d) for d in dead_letters]

        def save(conn: sqlite3.Connection) -> None:
            # The dead letters first: one the upsert refuses keeps its application row too.
            saved = {
                row[0] for letter in letters for row in conn.execute(
                    f"INSERT INTO dead_letters ({review.DEAD_LETTER_COLUMNS})"
                    f" VALUES ({', '.join('?' * 16)})" + review.upsert_dead_letter("?"),
                    letter,
                ).fetchall()
            }
            rows = [
                (r.id, r.status, r.api_key_id, r.idempotency_key, r.channel, r.partner_id,
                 r.external_id, r.received_at_ns, r.processed_at_ns, r.ssn_hash, r.pii_sealed,
                 r.document, r.rules_version, r.product_version, r.route)
                for r in review.without_refused(records, dead_letters, saved)
            ]
            conn.executemany(
                f"INSERT INTO applications ({_COLUMNS}) VALUES ({', '.join('?' * len(_FIELDS))})"
                + review.UPSERT_APPLICATION,
                rows,
            )

        await self._db.write(save)

    # -- manual review --------------------------------------------------------------

    async def list_dead_letters(
        self, where: DeadLetterFilter, *, limit: int, cursor: str | None = None
    ) -> tuple[list[DeadLetter], str | None]:
        clause, params = review.where_sql(where, cursor, lambda n: "?")
        rows = await self._db.read(
            lambda conn: conn.execute(
                f"SELECT {review.DEAD_LETTER_COLUMNS} FROM dead_letters{clause}"
                " ORDER BY dead_lettered_at_ns DESC, id DESC LIMIT ?",
                (*params, limit + 1),
            ).fetchall()
        )
        return review.page([review.dead_letter_from_row(row) for row in rows], limit)

    async def count_dead_letters(self, where: DeadLetterFilter) -> int:
        clause, params = review.where_sql(where, None, lambda n: "?")
        row = await self._db.read(
            lambda conn: conn.execute(f"SELECT count(*) FROM dead_letters{clause}", params)
            .fetchone()
        )
        return int(row[0])

    async def get_dead_letter(self, application_id: str) -> DeadLetter | None:
        row = await self._db.read(
            lambda conn: conn.execute(
                f"SELECT {review.DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id = ?",
                (application_id,),
            ).fetchone()
        )
        return None if row is None else review.dead_letter_from_row(row)

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
        audit_detail = _encode_json(detail)

        def resolve(conn: sqlite3.Connection) -> bool:
            changed = conn.execute(
                "UPDATE dead_letters SET status = ?, resolved_at_ns = ?, resolved_by = ?,"
                " resolution = ? WHERE id = ? AND status = 'open' AND dead_lettered_at_ns = ?",
                (status.value, at_ns, actor, reason, application_id, seen_dead_lettered_at_ns),
            ).rowcount
            if not changed:
                return False
            conn.execute(
                "UPDATE applications SET status = ? WHERE id = ? AND status = 'dead_lettered'",
                (status.value, application_id),
            )
            conn.execute(
                "INSERT INTO audit_log (at_ns, actor, action, target, detail)"
                " VALUES (?, ?, ?, ?, ?)",
                (at_ns, actor, _ACTIONS[status], application_id, audit_detail),
            )
            return True

        return await self._db.write(resolve)

    async def audit_trail(self, *, limit: int, before_seq: int | None = None) -> list[AuditEntry]:
        rows = await self._db.read(
            lambda conn: conn.execute(
                "SELECT seq, at_ns, actor, action, target, detail FROM audit_log"
                " WHERE seq < ? ORDER BY seq DESC LIMIT ?",
                (before_seq if before_seq is not None else 2**62, limit),
            ).fetchall()
        )
        return [
            AuditEntry(seq=r[0], at_ns=r[1], actor=r[2], action=r[3], target=r[4],
                       detail=msgspec.json.decode(r[5]))
            for r in rows
        ]

    async def audit_of(self, target: str, *, limit: int) -> list[AuditEntry]:
        rows = await self._db.read(
            lambda conn: conn.execute(
                "SELECT seq, at_ns, actor, action, target, detail FROM audit_log"
                " WHERE target = ? ORDER BY seq LIMIT ?",
                (target, limit),
            ).fetchall()
        )
        return [
            AuditEntry(seq=r[0], at_ns=r[1], actor=r[2], action=r[3], target=r[4],
                       detail=msgspec.json.decode(r[5]))
            for r in rows
        ]

    async def record_audit(
        self, *, at_ns: int, actor: str, action: str, target: str, detail: dict[str, Any]
    ) -> None:
        row = (at_ns, actor, action, target, _encode_json(detail))
        await self._db.write(
            lambda conn: conn.execute(
                "INSERT INTO audit_log (at_ns, actor, action, target, detail)"
                " VALUES (?, ?, ?, ?, ?)",
                row,
            )
        )

    async def audit_counts(self, since_ns: int) -> dict[str, int]:
        rows = await self._db.read(
            lambda conn: conn.execute(
                "SELECT action, count(*) FROM audit_log WHERE at_ns >= ? GROUP BY action",
                (since_ns,),
            ).fetchall()
        )
        return {action: int(n) for action, n in rows}

    async def get_application(self, application_id: str) -> ApplicationRecord | None:
        row = await self._db.read(
            lambda conn: conn.execute(
                f"SELECT {_COLUMNS}, {review_queue.DECISION_COLUMNS} FROM applications"
                " WHERE id = ?", (application_id,)
            ).fetchone()
        )
        if row is None:
            return None
        fields = dict(zip(_FIELDS, row[:len(_FIELDS)], strict=True))
        return ApplicationRecord(**fields,
                                 review=review_queue.decision_from_columns(*row[len(_FIELDS):]))

    async def search_applications(
        self, where: search.ApplicationFilter, *, limit: int, cursor: str | None = None
    ) -> tuple[list[search.ApplicationSummary], str | None]:
        sql, params = search.select_sql(where, cursor, limit, lambda n: "?")
        rows = await self._db.read(lambda conn: conn.execute(sql, params).fetchall())
        return search.page([search.summary_from_row(row) for row in rows], limit)

    async def ssn_matches(
        self, ssn_hashes: Sequence[str], since_ns: int
    ) -> set[tuple[str, str]]:
        hashes = list(set(ssn_hashes))
        if not hashes:
            return set()
        marks = ", ".join("?" * len(hashes))
        rows = await self._db.read(
            lambda conn: conn.execute(
                f"SELECT ssn_hash, id FROM applications WHERE ssn_hash IN ({marks})"
                " AND received_at_ns >= ?",
                (*hashes, since_ns),
            ).fetchall()
        )
        return {(str(h), str(i)) for h, i in rows}

    async def ping(self) -> None:
        await self._db.read(lambda conn: conn.execute("SELECT 1").fetchone())


_FIELDS = [name.strip() for name in _COLUMNS.split(",")]
_encode_json = msgspec.json.Encoder().encode
#: The audit action each resolution is recorded as.
_ACTIONS = {DeadLetterStatus.REPLAYED: "replay", DeadLetterStatus.DISCARDED: "discard"}


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
    """Whole statements, as SQLite counts them (a trigger body holds semicolons)."""
    statements, pending = [], ""
    for line in sql.splitlines():
        if line.strip().startswith("--") or not line.strip():
            continue
        pending += line + "\n"
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"expected complete SQL statements, got a trailing {pending!r}")
    return statements
