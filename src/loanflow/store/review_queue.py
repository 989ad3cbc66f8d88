"""The business review queue both stores keep: applications routed to manual_review,
oldest first, and the one final decision an operator records on each.

The queue is `route = 'manual_review' AND review_decision IS NULL`, the predicate of
the partial index applications_review_open (migrations/*/0008_search.sql), which
yields its rows already in page order (route, received_at_ns, id). A decision is one
conditional UPDATE on that same predicate: of two operators deciding at once, one
changes the row and the other finds it decided (PostgreSQL re-checks the WHERE on the
row the winner committed; SQLite's one writer runs them one after the other).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import msgspec

from loanflow.store import search
from loanflow.store.search import ApplicationSummary, RouteReason


class Decision(enum.StrEnum):
    APPROVE = "approve"
    DECLINE = "decline"


class ReviewDecision(msgspec.Struct, frozen=True, kw_only=True):
    """What an operator decided about an application in the review queue."""

    decision: str
    reason: str
    #: The API key id, or the dashboard session's actor.
    reviewed_by: str
    reviewed_at_ns: int


class ReviewItem(msgspec.Struct, frozen=True, kw_only=True):
    """One application awaiting a decision: its search summary and the route's reasons."""

    summary: ApplicationSummary
    route_reasons: tuple[RouteReason, ...]


class Outcome(enum.Enum):
    #: This call recorded the decision.
    RECORDED = "recorded"
    #: A decision was there already (the one returned): decisions are final.
    DECIDED_BEFORE = "decided_before"
    #: Stored, but not routed to manual_review.
    NOT_IN_QUEUE = "not_in_queue"
    #: No stored application has this id.
    NOT_STORED = "not_stored"


class ReviewQueueStore(Protocol):
    async def list_reviews(
        self, *, limit: int, cursor: str | None = None
    ) -> tuple[list[ReviewItem], str | None]:
        """The open reviews, oldest received first; the next page's cursor, or None at
        the end. ValueError for a cursor not made here."""
        ...

    async def decide(
        self, application_id: str, decision: ReviewDecision, *, detail: dict[str, Any]
    ) -> tuple[Outcome, ReviewDecision | None]:
        """In one transaction: record `decision` if the application is in the queue (routed
        to manual_review, undecided), and enter it in the audit trail with `detail`.
        The decision now held (this one, or the earlier one), None when there is none."""
        ...


#: Columns of a queue row: the search's summary (the document last).
COLUMNS = search.SUMMARY_COLUMNS
#: The queue, as literals: a partial index serves a query only when the query's text
#: implies the index's predicate (PostgreSQL's generic plans, SQLite always).
IN_QUEUE = "route = 'manual_review' AND review_decision IS NULL"
#: The decision's four columns, in ReviewDecision's field order.
DECISION_COLUMNS = "review_decision, review_reason, reviewed_by, reviewed_at_ns"
DECISION_FIELDS = tuple(c.strip() for c in DECISION_COLUMNS.split(","))
#: What `decide` reads when its UPDATE changed nothing, to tell why.
WHY_NOT = f"SELECT {DECISION_COLUMNS} FROM applications WHERE id = "
#: The audit action of a decision.
AUDIT_ACTION = "review"


def select_sql(
    cursor: str | None, limit: int, placeholder: Callable[[int], str]
) -> tuple[str, list[object]]:
    """The page's query and its parameters, `limit + 1` rows (`page` tells from the extra
    one whether there is more); the cursor is the search's (store/search.py)."""
    params: list[object] = []

    def param(value: object) -> str:
        params.append(value)
        return placeholder(len(params))

    after = ""
    if cursor is not None:
        at_ns, application_id = search.decode_cursor(cursor)
        after = f" AND (received_at_ns, id) > ({param(at_ns)}, {param(application_id)})"
    # Ordered by route first, a constant here: the index's own order, no sort step.
    sql = (f"SELECT {COLUMNS} FROM applications WHERE {IN_QUEUE}{after}"
           f" ORDER BY route, received_at_ns, id LIMIT {param(limit + 1)}")
    return sql, params


def update_sql(placeholder: Callable[[int], str]) -> str:
    """The conditional UPDATE of a decision; parameters: DECISION_COLUMNS' four values,
    then the application id."""
    marks = [placeholder(n) for n in range(1, 6)]
    return (f"UPDATE applications SET review_decision = {marks[0]}, review_reason = {marks[1]},"
            f" reviewed_by = {marks[2]}, reviewed_at_ns = {marks[3]}"
            f" WHERE id = {marks[4]} AND {IN_QUEUE}")


def decision_params(application_id: str, decision: ReviewDecision) -> tuple[object, ...]:
    return (decision.decision, decision.reason, decision.reviewed_by, decision.reviewed_at_ns,
            application_id)


def decision_from_columns(
    decision: str | None, reason: str | None, reviewed_by: str | None,
    reviewed_at_ns: int | None,
) -> ReviewDecision | None:
    """The decision of a row, None while it has none."""
    if decision is None or reviewed_at_ns is None:
        return None
    return ReviewDecision(decision=decision, reason=reason or "", reviewed_by=reviewed_by or "",
                          reviewed_at_ns=reviewed_at_ns)


def why_not(row: Sequence[Any] | None) -> tuple[Outcome, ReviewDecision | None]:
    """The outcome of a decision that changed no row, from the row's WHY_NOT columns."""
    if row is None:
        return Outcome.NOT_STORED, None
    earlier = decision_from_columns(*row)
    if earlier is not None:
        return Outcome.DECIDED_BEFORE, earlier
    # Not routed to review, or (PostgreSQL) not when the UPDATE read it: a dead-lettered
    # row whose replay stored it as manual_review between the two statements. Either
    # way it was not in the queue when the decision came; asked again, it may be.
    return Outcome.NOT_IN_QUEUE, None


def item_from_row(row: Sequence[Any]) -> ReviewItem:
    """A queue row (COLUMNS), its document decoded once for summary and reasons."""
    facts = search.facts_of(row[-1])
    return ReviewItem(summary=search.summary_from_row(row, facts),
                      route_reasons=facts.route_reasons)


def page(rows: list[ReviewItem], limit: int) -> tuple[list[ReviewItem], str | None]:
    """Rows fetched with limit + 1: the page, and the next cursor when there is more."""
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1].summary
    return rows[:limit], search.encode_cursor(last.received_at_ns, last.id)
