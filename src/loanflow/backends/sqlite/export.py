"""The CSV export's reads in the SQLite store (store/export.py)."""

from __future__ import annotations

from loanflow.backends.sqlite.database import SQLiteDatabase
from loanflow.store import export, search
from loanflow.store.export import ExportRow
from loanflow.store.search import ApplicationFilter


class SQLiteExport:
    """Mixed into SQLiteStore, which provides `_db`."""

    _db: SQLiteDatabase

    async def count_applications(self, where: ApplicationFilter, *, at_most: int) -> int:
        sql, params = search.count_sql(where, at_most, lambda n: "?")
        row = await self._db.read(lambda conn: conn.execute(sql, params).fetchone())
        return int(row[0])

    async def export_applications(
        self, where: ApplicationFilter, *, limit: int, cursor: str | None = None
    ) -> tuple[list[ExportRow], str | None]:
        sql, params = export.select_sql(where, cursor, limit, lambda n: "?")
        rows = await self._db.read(lambda conn: conn.execute(sql, params).fetchall())
        return export.page([export.row(r) for r in rows], limit)
