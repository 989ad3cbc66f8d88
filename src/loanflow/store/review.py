"""The manual-review records: dead letters and the operators' audit trail.

A dead letter keeps the whole envelope (the application sealed inside), so an
operator can replay it under its own id; the store's upsert then lets the new
result replace the `dead_lettered` row, and nothing else.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

import msgspec

from loanflow.models import AttemptRecord

R = TypeVar("R", bound="_HasIdAndStatus")


class _HasIdAndStatus(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def status(self) -> str: ...


class DeadLetterStatus(enum.StrEnum):
    OPEN = "open"
    REPLAYED = "replayed"
    DISCARDED = "discarded"


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # the application id
    status: str
    api_key_id: str
    idempotency_key: str
    channel: str
    partner_id: str | None
    external_id: str | None
    received_at_ns: int
    dead_lettered_at_ns: int
    error_code: str  # of the last attempt
    last_error: str
    attempts: tuple[AttemptRecord, ...]
    #: The msgpack Envelope; the application inside is sealed with the PII key.
    envelope: bytes
    resolved_at_ns: int | None = None
    resolved_by: str | None = None
    resolution: str | None = None


class DeadLetterFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Every field narrows the search; None means any."""

    status: str | None = DeadLetterStatus.OPEN.value
    error_code: str | None = None
    channel: str | None = None
    partner_id: str | None = None
    external_id: str | None = None
    id: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    at_ns: int
    actor: str  # API key id
    action: str  # replay | discard
    target: str  # application id
    detail: dict[str, Any]  # before/after, reason, correction (masked)


#: Columns the filter may narrow by, in the order both backends build the WHERE.
FILTER_COLUMNS = ("status", "error_code", "channel", "partner_id", "external_id", "id")


def encode_cursor(dead_lettered_at_ns: int, application_id: str) -> str:
    return f"{dead_lettered_at_ns}.{application_id}"


#: Times are 64-bit integers in both stores; a cursor past them was not made here.
_MAX_CURSOR_NS = 2**63 - 1


def decode_cursor(cursor: str) -> tuple[int, str]:
    """Raises ValueError on a cursor this module did not make."""
    at, dot, application_id = cursor.partition(".")
    # ASCII digits only (int() also reads `²`), within what a store holds.
    valid = (dot and at.isascii() and at.isdigit() and len(at) <= len(str(_MAX_CURSOR_NS))
             and int(at) <= _MAX_CURSOR_NS and application_id and "\x00" not in application_id)
    if not valid:
        raise ValueError("expected a cursor from a previous page")
    return int(at), application_id


class ReviewStore(Protocol):
    async def list_dead_letters(
        self, where: DeadLetterFilter, *, limit: int, cursor: str | None = None
    ) -> tuple[list[DeadLetter], str | None]:
        """Newest dead-lettered first; the cursor of the next page, or None at the end."""
        ...

    async def count_dead_letters(self, where: DeadLetterFilter) -> int: ...

    async def get_dead_letter(self, application_id: str) -> DeadLetter | None: ...

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
        """In one transaction: the open dead letter the operator saw (same
        `dead_lettered_at_ns`) becomes `status`, its application row (if still
        dead_lettered) follows, and the action enters the audit trail. False when it
        is no longer that open dead letter (resolved, or dead-lettered anew)."""
        ...

    async def audit_trail(self, *, limit: int, before_seq: int | None = None) -> list[AuditEntry]:
        """Newest first."""
        ...

    async def audit_of(self, target: str, *, limit: int) -> list[AuditEntry]:
        """The entries naming `target` (an application id), oldest first, at most `limit`
        (index audit_log_target)."""
        ...

    async def record_audit(
        self, *, at_ns: int, actor: str, action: str, target: str, detail: dict[str, Any]
    ) -> None:
        """Append one entry that goes with no other change (e.g. a dashboard sign-in)."""
        ...

    async def audit_counts(self, since_ns: int) -> dict[str, int]:
        """How many entries of each action since `since_ns`."""
        ...


def where_sql(
    where: DeadLetterFilter, cursor: str | None, placeholder: Any
) -> tuple[str, list[object]]:
    """` WHERE …` for a filter and page cursor; `placeholder(n)` spells the n-th parameter
    (`?` for SQLite, `$n` for PostgreSQL), so both backends search alike."""
    clauses: list[str] = []
    params: list[object] = []

    def param(value: object) -> str:
        params.append(value)
        return str(placeholder(len(params)))

    for column in FILTER_COLUMNS:
        value = getattr(where, column)
        if value is not None:
            clauses.append(f"{column} = {param(value)}")
    if where.since_ns is not None:
        clauses.append(f"dead_lettered_at_ns >= {param(where.since_ns)}")
    if where.until_ns is not None:
        clauses.append(f"dead_lettered_at_ns < {param(where.until_ns)}")
    if cursor is not None:
        at_ns, application_id = decode_cursor(cursor)
        clauses.append(f"(dead_lettered_at_ns, id) < ({param(at_ns)}, {param(application_id)})")
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


#: Columns of the dead_letters table in DeadLetter's field order.
DEAD_LETTER_COLUMNS = (
    "id, status, api_key_id, idempotency_key, channel, partner_id, external_id,"
    " received_at_ns, dead_lettered_at_ns, error_code, last_error, attempts, envelope,"
    " resolved_at_ns, resolved_by, resolution"
)
DEAD_LETTER_FIELDS = [c.strip() for c in DEAD_LETTER_COLUMNS.split(",")]

_encode = msgspec.json.Encoder().encode


def dead_letter_row(d: DeadLetter) -> tuple[object, ...]:
    """The 16 columns, then the first attempt's time for `upsert_dead_letter`."""
    return (d.id, d.status, d.api_key_id, d.idempotency_key, d.channel, d.partner_id,
            d.external_id, d.received_at_ns, d.dead_lettered_at_ns, d.error_code, d.last_error,
            _encode(d.attempts), d.envelope, d.resolved_at_ns, d.resolved_by, d.resolution,
            d.attempts[0].at_ns if d.attempts else 0)


def dead_letter_from_row(row: Any) -> DeadLetter:
    values = dict(zip(DEAD_LETTER_FIELDS, row, strict=True))
    values["attempts"] = msgspec.json.decode(values["attempts"], type=tuple[AttemptRecord, ...])
    values["envelope"] = bytes(values["envelope"])
    return DeadLetter(**values)


#: SQL shared by both backends (both speak `ON CONFLICT … EXCLUDED`).
#: A processed result replaces a row only while it is dead_lettered or replayed:
#: a stored or rejected application never changes, so a replay cannot double it.
UPSERT_APPLICATION = (
    " ON CONFLICT (id) DO UPDATE SET status = excluded.status, route = excluded.route,"
    " channel = excluded.channel, partner_id = excluded.partner_id,"
    " external_id = excluded.external_id, processed_at_ns = excluded.processed_at_ns,"
    " ssn_hash = excluded.ssn_hash, pii_sealed = excluded.pii_sealed,"
    " document = excluded.document, rules_version = excluded.rules_version,"
    " product_version = excluded.product_version"
    " WHERE applications.status IN ('dead_lettered', 'replayed')"
)
def upsert_dead_letter(first_attempt_at: str) -> str:
    """` ON CONFLICT …` for a dead letter saved again; `first_attempt_at` is the parameter
    holding the new letter's first attempt time (`dead_letter_row` puts it last).

    An open letter takes the new attempts (a redelivery that failed once more). A
    replayed one reopens only with a history that began after it was dead-lettered:
    the replay failed anew; a stale redelivery of the old delivery (committed but not
    yet acked when the replay came) carries its earlier attempts and leaves it
    replayed. A discarded one never changes. A stale delivery with no earlier attempt
    (max_attempts 1, a crash loop) that a processor held while the replay was made
    cannot be told from the replay's own failure and reopens it: a replay number in
    the envelope and the row would tell them apart.
    It returns the id of each letter written; give those to `without_refused`."""
    return (
        " ON CONFLICT (id) DO UPDATE SET status = 'open', channel = excluded.channel,"
        " partner_id = excluded.partner_id, external_id = excluded.external_id,"
        " dead_lettered_at_ns = excluded.dead_lettered_at_ns, error_code = excluded.error_code,"
        " last_error = excluded.last_error, attempts = excluded.attempts,"
        " envelope = excluded.envelope, resolved_at_ns = NULL, resolved_by = NULL,"
        " resolution = NULL"
        " WHERE dead_letters.status = 'open' OR (dead_letters.status = 'replayed'"
        f" AND {first_attempt_at} > dead_letters.dead_lettered_at_ns)"
        " RETURNING id"
    )


def without_refused(
    records: Sequence[R], dead_letters: Sequence[DeadLetter], saved: set[str]
) -> list[R]:
    """The records to save once the dead letters are: a dead letter the upsert refused
    (discarded, or replayed and awaiting its replay) keeps its application row as well."""
    refused = {d.id for d in dead_letters} - saved
    if not refused:
        return list(records)
    return [r for r in records if not (r.id in refused and r.status == "dead_lettered")]

def page(
    rows: list[DeadLetter], limit: int
) -> tuple[list[DeadLetter], str | None]:
    """Rows fetched with limit + 1: the page, and the next cursor when there is more."""
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(last.dead_lettered_at_ns, last.id)
