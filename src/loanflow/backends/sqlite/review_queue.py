"""The business-review half of the SQLite store: the queue and its decisions."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

from loanflow.backends.sqlite.database import SQLiteDatabase
from loanflow.store import review_queue
from loanflow.store.review_queue import Outcome, ReviewDecision, ReviewItem

_UPDATE = review_queue.update_sql(lambda n: "?")
_encode_json = msgspec.json.Encoder().encode


class SQLiteReviewQueue:
    """Mixed into SQLiteStore, which provides `_db`."""

    _db: SQLiteDatabase

    async def list_reviews(
        self, *, limit: int, cursor: str | None = None
    ) -> tuple[list[ReviewItem], str | None]:
        sql, params = review_queue.select_sql(cursor, limit, lambda n: "?")
        rows = await self._db.read(lambda conn: conn.execute(sql, params).fetchall())
        return review_queue.page([review_queue.item_from_row(row) for row in rows], limit)

    async def decide(
        self, application_id: str, decision: ReviewDecision, *, detail: dict[str, Any]
    ) -> tuple[Outcome, ReviewDecision | None]:
        audit_detail = _encode_json(detail)

        def decide(conn: sqlite3.Connection) -> tuple[Outcome, ReviewDecision | None]:
            changed = conn.execute(
                _UPDATE, review_queue.decision_params(application_id, decision)
            ).rowcount
            if not changed:
                return review_queue.why_not(
                    conn.execute(review_queue.WHY_NOT + "?", (application_id,)).fetchone())
            conn.execute(
                "INSERT INTO audit_log (at_ns, actor, action, target, detail)"
                " VALUES (?, ?, ?, ?, ?)",
                (decision.reviewed_at_ns, decision.reviewed_by, review_queue.AUDIT_ACTION,
                 application_id, audit_detail),
            )
            return Outcome.RECORDED, decision

        return await self._db.write(decide)
