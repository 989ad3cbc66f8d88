"""The application search both stores run: filters, newest first, keyset pages.

A page is `ORDER BY received_at_ns DESC, id DESC`; its cursor is the position of its
last row, so the next page starts strictly after it. Both values of a row never
change, so a page never repeats a row of an earlier one nor skips a row that existed
when the first page was read, however many applications arrive meanwhile (they are
newer, or processed late with an older receipt time: then a later page shows them).
Which index serves which filter: migrations/*/0008_search.sql.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Callable, Sequence
from typing import Any

import msgspec


class Review(enum.StrEnum):
    #: Routed to manual_review and no business decision yet.
    OPEN = "open"
    #: A decision recorded (POST /v1/applications/{id}/review).
    DECIDED = "decided"


class ApplicationFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Every field narrows the search; None means any. Times bound received_at."""

    status: str | None = None
    route: str | None = None
    channel: str | None = None
    partner_id: str | None = None
    external_id: str | None = None
    review: Review | None = None
    since_ns: int | None = None
    until_ns: int | None = None


class ApplicationSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One application as a search lists it: no PII, no decision trace."""

    id: str
    status: str
    route: str | None
    channel: str
    partner_id: str | None
    external_id: str | None
    received_at_ns: int
    processed_at_ns: int
    score: int | None
    risk_tier: str | None
    flags: tuple[str, ...]
    review_decision: str | None
    reviewed_at_ns: int | None


#: Columns of a summary row, the document last (score, tier and flags live in it).
SUMMARY_COLUMNS = (
    "id, status, route, channel, partner_id, external_id, received_at_ns, processed_at_ns,"
    " review_decision, reviewed_at_ns, document"
)
#: Equality filters, in the order the WHERE is built.
_EQUAL = ("status", "route", "channel", "partner_id", "external_id")
#: As literals, not parameters: a partial index serves a query only when the query's
#: own text implies the index's predicate (PostgreSQL's generic plans, SQLite always).
_REVIEW_SQL = {
    Review.OPEN: "route = 'manual_review' AND review_decision IS NULL",
    Review.DECIDED: "review_decision IS NOT NULL",
}
#: Times are 64-bit integers in both stores; a cursor past them was not made here.
_MAX_NS = 2**63 - 1


def encode_cursor(received_at_ns: int, application_id: str) -> str:
    """Opaque to clients: the position (received_at_ns, id) of a page's last row."""
    raw = f"{received_at_ns}.{application_id}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """Raises ValueError on a cursor `encode_cursor` did not make."""
    invalid = ValueError("expected the next_cursor of a previous page")
    if not cursor.isascii() or len(cursor) > 200:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid from None
    at, dot, application_id = raw.partition(".")
    # ASCII digits only (int() also reads `²`), within what a store holds.
    if not (dot and at.isdigit() and len(at) <= len(str(_MAX_NS)) and int(at) <= _MAX_NS
            and application_id and application_id.isprintable()):
        raise invalid
    return int(at), application_id


def _where_sql(
    where: ApplicationFilter, cursor: str | None, param: Callable[[object], str]
) -> str:
    """` WHERE …` of a filter and page cursor (empty for neither); `param(value)` adds a
    parameter and spells it."""
    clauses: list[str] = []
    for column in _EQUAL:
        value = getattr(where, column)
        if value is not None:
            clauses.append(f"{column} = {param(value)}")
    if where.review is not None:
        clauses.append(_REVIEW_SQL[where.review])
    if where.since_ns is not None:
        clauses.append(f"received_at_ns >= {param(where.since_ns)}")
    if where.until_ns is not None:
        clauses.append(f"received_at_ns < {param(where.until_ns)}")
    if cursor is not None:
        at_ns, application_id = decode_cursor(cursor)
        clauses.append(f"(received_at_ns, id) < ({param(at_ns)}, {param(application_id)})")
    return " WHERE " + " AND ".join(clauses) if clauses else ""


def _parameters(
    placeholder: Callable[[int], str],
) -> tuple[list[object], Callable[[object], str]]:
    params: list[object] = []

    def param(value: object) -> str:
        params.append(value)
        return placeholder(len(params))

    return params, param


def select_sql(
    where: ApplicationFilter, cursor: str | None, limit: int, placeholder: Callable[[int], str],
    *, columns: str = SUMMARY_COLUMNS,
) -> tuple[str, list[object]]:
    """The page's query and its parameters; `placeholder(n)` spells the n-th parameter
    (`?` for SQLite, `$n` for PostgreSQL), so both stores search alike. Fetches
    `limit + 1` rows: `page` tells from the extra one whether there is more. `columns`:
    what each row holds (the export reads more than a summary)."""
    params, param = _parameters(placeholder)
    clause = _where_sql(where, cursor, param)
    sql = (f"SELECT {columns} FROM applications{clause}"
           f" ORDER BY received_at_ns DESC, id DESC LIMIT {param(limit + 1)}")
    return sql, params


def count_sql(
    where: ApplicationFilter, at_most: int, placeholder: Callable[[int], str]
) -> tuple[str, list[object]]:
    """How many rows match, counted no further than `at_most`: the search's own query
    (same WHERE, same order, so the same index) inside a count, its cost bounded."""
    params, param = _parameters(placeholder)
    clause = _where_sql(where, None, param)
    sql = (f"SELECT count(*) FROM (SELECT 1 FROM applications{clause}"
           f" ORDER BY received_at_ns DESC, id DESC LIMIT {param(at_most)}) AS capped")
    return sql, params


class RouteReason(msgspec.Struct, frozen=True):
    """Why the processor routed it as it did (domain/route.py's Reason)."""

    code: str
    message: str


class DocumentFacts(msgspec.Struct):
    """The few fields of a stored document that lists show (its enrichment's)."""

    score: int | None = None
    risk_tier: str | None = None
    flags: tuple[str, ...] = ()
    route_reasons: tuple[RouteReason, ...] = ()


class _Assessment(msgspec.Struct):
    enrichment: DocumentFacts | None = None


class _Document(msgspec.Struct):
    """The rest of a stored document is skipped unread."""

    assessment: _Assessment | None = None


_decode_document = msgspec.json.Decoder(_Document).decode
_NO_FACTS = DocumentFacts()


def facts_of(document: bytes | str) -> DocumentFacts:
    try:
        assessment = _decode_document(document).assessment
    except msgspec.DecodeError:  # not a document this version wrote: list it all the same
        return _NO_FACTS
    enrichment = assessment.enrichment if assessment is not None else None
    return enrichment if enrichment is not None else _NO_FACTS


def summary_from_row(
    row: Sequence[Any], facts: DocumentFacts | None = None
) -> ApplicationSummary:
    """A row of COLUMNS; `facts`: its document's, when the caller decoded them already."""
    (application_id, status, route, channel, partner_id, external_id, received_at_ns,
     processed_at_ns, review_decision, reviewed_at_ns, document) = row
    facts = facts if facts is not None else facts_of(document)
    return ApplicationSummary(
        id=application_id, status=status, route=route, channel=channel,
        partner_id=partner_id, external_id=external_id, received_at_ns=received_at_ns,
        processed_at_ns=processed_at_ns, score=facts.score, risk_tier=facts.risk_tier,
        flags=facts.flags, review_decision=review_decision, reviewed_at_ns=reviewed_at_ns,
    )


def page(
    rows: list[ApplicationSummary], limit: int
) -> tuple[list[ApplicationSummary], str | None]:
    """Rows fetched with limit + 1: the page, and the next cursor when there is more."""
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(last.received_at_ns, last.id)
