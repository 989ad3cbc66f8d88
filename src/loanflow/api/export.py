"""`GET /v1/exports/applications.csv`: the applications of a search as CSV, streamed.

The filters are the search's (`GET /v1/applications`: status, route, channel,
partner_id, external_id, review, since, until), checked and refused alike; there is no
limit nor cursor: the file holds every match, newest first, up to `MAX_ROWS`. Before the
first byte the matches are counted (the search's query, bounded: at most MAX_ROWS + 1
rows read) into `X-Total-Rows`, with `X-Truncated: true` when there are more; then the
store is read a page at a time with the search's cursor, each page written out as it
comes, so the whole file is never in memory.

The export is of the applications received before it began (a later arrival belongs to
the next export); one received before and processed while it runs may still be listed,
so a file can hold a row or two more than `X-Total-Rows` said, never more than MAX_ROWS.

PII is masked as the single view masks it: the stored document holds SSN and date of
birth masked already, the SSN is masked again here, the date of birth is not a column. A
cell starting with = + - @ tab or carriage return is prefixed with `'` (OWASP CSV
injection), so a spreadsheet shows it as text instead of running it as a formula.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from loanflow.api import search
from loanflow.api.applications import runtime_of
from loanflow.apikeys import Scope
from loanflow.errors import LoanflowError
from loanflow.models import format_ts
from loanflow.pii import mask_ssn
from loanflow.store.base import Store
from loanflow.store.export import ExportRow
from loanflow.store.search import ApplicationFilter

log = logging.getLogger(__name__)

#: Most rows one export holds; beyond, `X-Truncated: true` and the file stops there.
MAX_ROWS = 100_000
#: Rows read from the store at a time (each with its ~4 KB document).
PAGE_ROWS = 500
#: The search's parameters but its page's.
PARAMETERS = search.PARAMETERS - {"limit", "cursor"}
MEDIA_TYPE = "text/csv; charset=utf-8"
#: The columns, in order: what an operator looks for, every PII value masked. Times are
#: RFC 3339 UTC as the JSON answers give them; the amount in dollars with 2 decimals;
#: lists (flags, reasons) joined by "; ". Dead-lettered, replayed and discarded rows were
#: never assessed: their applicant, loan and assessment cells are empty.
COLUMNS = (
    "id", "received_at", "processed_at", "status", "route", "channel", "partner_id",
    "external_id", "applicant_name", "ssn", "email", "state", "loan_amount", "term_months",
    "purpose", "risk_tier", "score", "flags", "reasons", "review_decision", "review_reason",
    "reviewed_by", "reviewed_at",
)
#: What a spreadsheet may take for the start of a formula (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, kw_only=True)
class ExportLimits:
    """The export's bounds; the app's are `app.state.export_limits` when set (tests use
    small ones), these defaults otherwise."""

    max_rows: int = MAX_ROWS
    page_rows: int = PAGE_ROWS


_DEFAULT_LIMITS = ExportLimits()


class _Coded(msgspec.Struct):
    code: str = ""


class _Address(msgspec.Struct):
    state: str | None = None


class _Applicant(msgspec.Struct):
    first_name: str | None = None
    last_name: str | None = None
    ssn: str | None = None
    email: str | None = None
    address: _Address | None = None


class _Loan(msgspec.Struct):
    amount: float | None = None
    term_months: int | None = None
    purpose: str | None = None


class _Application(msgspec.Struct):
    applicant: _Applicant | None = None
    loan: _Loan | None = None


class _Enrichment(msgspec.Struct):
    score: int | None = None
    risk_tier: str | None = None
    flags: list[str] = []
    route_reasons: list[_Coded] = []


class _Assessment(msgspec.Struct):
    violations: list[_Coded] = []
    enrichment: _Enrichment | None = None


class _Document(msgspec.Struct):
    """The fields of a stored document the columns show; the rest is skipped unread."""

    application: _Application | None = None
    assessment: _Assessment | None = None


_decode_document = msgspec.json.Decoder(_Document).decode
_EMPTY = _Document()


async def export_applications(request: Request) -> Response:
    await request.app.state.auth.require(request, Scope.READ)
    where = search.filter_of(request, PARAMETERS)
    limits: ExportLimits = getattr(request.app.state, "export_limits", _DEFAULT_LIMITS)
    started_ns = time.time_ns()
    # As of now: what arrives while the file is written belongs to the next export.
    until_ns = started_ns if where.until_ns is None else min(where.until_ns, started_ns)
    where = msgspec.structs.replace(where, until_ns=until_ns)
    store = runtime_of(request).store
    matching = await store.count_applications(where, at_most=limits.max_rows + 1)
    stamp = dt.datetime.fromtimestamp(started_ns / 1e9, tz=dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    headers = {
        "Content-Disposition": f'attachment; filename="applications-{stamp}.csv"',
        "X-Total-Rows": str(min(matching, limits.max_rows)),
    }
    if matching > limits.max_rows:
        headers["X-Truncated"] = "true"
    return StreamingResponse(_csv(store, where, limits), media_type=MEDIA_TYPE,
                             headers=headers)


async def _csv(
    store: Store, where: ApplicationFilter, limits: ExportLimits
) -> AsyncIterator[bytes]:
    """The header row, then each page of rows as it is read, until MAX_ROWS."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def written() -> bytes:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text.encode()

    writer.writerow(COLUMNS)
    yield written()
    left, cursor = limits.max_rows, None
    while left > 0:
        try:
            rows, cursor = await store.export_applications(
                where, limit=min(limits.page_rows, left), cursor=cursor)
        except LoanflowError as exc:
            # The answer has begun: nothing left but to cut it short, which the client
            # sees as a failed download (no final chunk), never as a complete file.
            log.warning("export cut short after %d rows: %s", limits.max_rows - left, exc)
            raise
        if not rows:
            return
        writer.writerows(cells(row) for row in rows)
        left -= len(rows)
        yield written()
        if cursor is None:
            return


def cells(row: ExportRow) -> list[str]:
    """One row's cells, in COLUMNS' order, escaped."""
    try:
        document = _decode_document(row.document)
    except msgspec.DecodeError:  # not a document this version wrote: its columns still show
        document = _EMPTY
    application = document.application or _Application()
    applicant = application.applicant or _Applicant()
    loan = application.loan or _Loan()
    assessment = document.assessment or _Assessment()
    enrichment = assessment.enrichment or _Enrichment()
    reasons = assessment.violations or enrichment.route_reasons
    name = " ".join(n for n in (applicant.first_name, applicant.last_name) if n)
    values: list[Any] = [
        row.id, format_ts(row.received_at_ns), format_ts(row.processed_at_ns), row.status,
        row.route, row.channel, row.partner_id, row.external_id, name,
        mask_ssn(applicant.ssn) if applicant.ssn else None, applicant.email,
        applicant.address.state if applicant.address else None,
        f"{loan.amount:.2f}" if loan.amount is not None else None, loan.term_months,
        loan.purpose, enrichment.risk_tier, enrichment.score, "; ".join(enrichment.flags),
        "; ".join(r.code for r in reasons), row.review_decision, row.review_reason,
        row.reviewed_by,
        format_ts(row.reviewed_at_ns) if row.reviewed_at_ns is not None else None,
    ]
    return [escape(value) for value in values]


def escape(value: object) -> str:
    """The cell's text; one a spreadsheet could run as a formula prefixed with `'`."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text
