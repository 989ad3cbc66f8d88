"""The CSV export's reads in the PostgreSQL store (store/export.py)."""

from __future__ import annotations

from loanflow.backends.postgres.pooled import Pooled
from loanflow.store import export, search
from loanflow.store.export import ExportRow
from loanflow.store.search import ApplicationFilter


class PostgresExport(Pooled):
    """The CSV export's reads. Every query here is built from an operator's request:
    `for_request=True`."""

    async def count_applications(self, where: ApplicationFilter, *, at_most: int) -> int:
        sql, params = search.count_sql(where, at_most, lambda n: f"${n}")
        async with self._connection("count_applications", for_request=True) as conn:
            return int(await conn.fetchval(sql, *params))

    async def export_applications(
        self, where: ApplicationFilter, *, limit: int, cursor: str | None = None
    ) -> tuple[list[ExportRow], str | None]:
        sql, params = export.select_sql(where, cursor, limit, lambda n: f"${n}")
        async with self._connection("export_applications", for_request=True) as conn:
            rows = await conn.fetch(sql, *params)
        return export.page([export.row(tuple(r)) for r in rows], limit)
