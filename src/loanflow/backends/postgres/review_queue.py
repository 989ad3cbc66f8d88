"""The business-review half of the PostgreSQL store: the queue and its decisions."""

from __future__ import annotations

from typing import Any

import msgspec

from loanflow.backends.postgres.pooled import Pooled
from loanflow.store import review_queue
from loanflow.store.review_queue import Outcome, ReviewDecision, ReviewItem

_UPDATE = review_queue.update_sql(lambda n: f"${n}")
_encode = msgspec.json.Encoder().encode


class PostgresReviewQueue(Pooled):
    """The business review queue. Every query here is built from an operator's request:
    `for_request=True`."""

    async def list_reviews(
        self, *, limit: int, cursor: str | None = None
    ) -> tuple[list[ReviewItem], str | None]:
        sql, params = review_queue.select_sql(cursor, limit, lambda n: f"${n}")
        async with self._connection("list_reviews", for_request=True) as conn:
            rows = await conn.fetch(sql, *params)
        return review_queue.page([review_queue.item_from_row(tuple(r)) for r in rows], limit)

    async def decide(
        self, application_id: str, decision: ReviewDecision, *, detail: dict[str, Any]
    ) -> tuple[Outcome, ReviewDecision | None]:
        if "\x00" in application_id:
            return Outcome.NOT_STORED, None  # text cannot hold NUL: no such id exists
        async with self._transaction("decide", for_request=True) as conn:
            # READ COMMITTED: a racing UPDATE waits for the winner's row lock, then finds
            # the WHERE false on the row the winner committed, and changes nothing.
            changed = await conn.execute(
                _UPDATE, *review_queue.decision_params(application_id, decision))
            if changed == "UPDATE 0":
                # A new snapshot per statement: it sees the winner's decision.
                row = await conn.fetchrow(review_queue.WHY_NOT + "$1", application_id)
                return review_queue.why_not(None if row is None else tuple(row))
            await conn.execute(
                "INSERT INTO audit_log (at_ns, actor, action, target, detail)"
                " VALUES ($1, $2, $3, $4, $5)",
                decision.reviewed_at_ns, decision.reviewed_by, review_queue.AUDIT_ACTION,
                application_id, _encode(detail),
            )
        return Outcome.RECORDED, decision
