"""What the CSV export of a search reads (GET /v1/exports/applications.csv): the search's
rows with their documents and review columns, a page at a time, and a bounded count.

Both go through the search's own WHERE and order (store/search.py), so every filter is
served by the index migration 0008 names for it, and pages are the search's keyset
pages: a row is neither repeated nor skipped, however long the export takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from loanflow.store import search
from loanflow.store.search import ApplicationFilter

#: Columns of an export row, in ExportRow's field order (the document last).
COLUMNS = (
    "id, status, route, channel, partner_id, external_id, received_at_ns, processed_at_ns,"
    " review_decision, review_reason, reviewed_by, reviewed_at_ns, document"
)


class ExportRow(msgspec.Struct, frozen=True, kw_only=True):
    """One application as the export reads it: its columns, and its stored document (the
    masked application and the assessment), undecoded."""

    id: str
    status: str
    route: str | None
    channel: str
    partner_id: str | None
    external_id: str | None
    received_at_ns: int
    processed_at_ns: int
    review_decision: str | None
    review_reason: str | None
    reviewed_by: str | None
    reviewed_at_ns: int | None
    document: bytes


_FIELDS = ExportRow.__struct_fields__


class ExportStore(Protocol):
    async def count_applications(self, where: ApplicationFilter, *, at_most: int) -> int:
        """How many stored applications match `where`, counting no further than `at_most`
        (its cost is bounded however many match)."""
        ...

    async def export_applications(
        self, where: ApplicationFilter, *, limit: int, cursor: str | None = None
    ) -> tuple[list[ExportRow], str | None]:
        """A page of the search `where` with the documents, newest received first; the
        next page's cursor (the search's), or None at the end."""
        ...


def select_sql(
    where: ApplicationFilter, cursor: str | None, limit: int, placeholder: Any
) -> tuple[str, list[object]]:
    return search.select_sql(where, cursor, limit, placeholder, columns=COLUMNS)


def row(values: Sequence[Any]) -> ExportRow:
    fields = dict(zip(_FIELDS, values, strict=True))
    document = fields["document"]
    fields["document"] = document.encode() if isinstance(document, str) else bytes(document)
    return ExportRow(**fields)


def page(rows: list[ExportRow], limit: int) -> tuple[list[ExportRow], str | None]:
    """Rows fetched with limit + 1: the page, and the next cursor when there is more."""
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], search.encode_cursor(last.received_at_ns, last.id)
