"""The dashboard-login half of the SQLite store: login codes, sessions, their secret."""

from __future__ import annotations

import sqlite3

from loanflow.backends.sqlite.database import SQLiteDatabase
from loanflow.logins import KEEP_EXPIRED_S, LoginCode, Redeemed, Session, scopes_text
from loanflow.store.logins import (
    CODE_COLUMNS,
    SESSION_COLUMNS,
    code_from_row,
    session_from_row,
    why_not_redeemed,
)

_KEEP_EXPIRED_NS = KEEP_EXPIRED_S * 1_000_000_000


class SQLiteLogins:
    """Mixed into SQLiteStore, which provides `_db`."""

    _db: SQLiteDatabase

    async def create_login_code(self, code: LoginCode, code_hash: str) -> None:
        row = (code_hash, code.id, code.label, scopes_text(code.scopes), code.created_at_ns,
               code.expires_at_ns, code.used_at_ns)

        def create(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM login_codes WHERE expires_at_ns < ?",
                         (code.created_at_ns - _KEEP_EXPIRED_NS,))
            conn.execute(f"INSERT INTO login_codes (code_hash, {CODE_COLUMNS})"
                         " VALUES (?, ?, ?, ?, ?, ?, ?)", row)

        await self._db.write(create)

    async def redeem_login_code(
        self, code_hash: str, at_ns: int
    ) -> tuple[Redeemed, LoginCode | None]:
        def redeem(conn: sqlite3.Connection) -> tuple[Redeemed, LoginCode | None]:
            # One statement on the one writer: two redemptions cannot both see it unused.
            row = conn.execute(
                "UPDATE login_codes SET used_at_ns = ? WHERE code_hash = ?"
                f" AND used_at_ns IS NULL AND expires_at_ns > ? RETURNING {CODE_COLUMNS}",
                (at_ns, code_hash, at_ns),
            ).fetchone()
            if row is not None:
                return Redeemed.OK, code_from_row(row)
            seen = conn.execute("SELECT used_at_ns FROM login_codes WHERE code_hash = ?",
                                (code_hash,)).fetchone()
            return why_not_redeemed(known=seen is not None, used_at_ns=seen and seen[0]), None

        return await self._db.write(redeem)

    async def create_session(self, session: Session, token_hash: str) -> None:
        row = (token_hash, session.id, session.actor, session.label,
               scopes_text(session.scopes), session.created_at_ns, session.expires_at_ns,
               session.key_hash, session.revoked_at_ns)

        def create(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM sessions WHERE expires_at_ns < ?",
                         (session.created_at_ns - _KEEP_EXPIRED_NS,))
            conn.execute(f"INSERT INTO sessions (token_hash, {SESSION_COLUMNS})"
                         " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)

        await self._db.write(create)

    async def find_session(self, token_hash: str) -> Session | None:
        row = await self._db.read(
            lambda conn: conn.execute(
                f"SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = ?", (token_hash,)
            ).fetchone()
        )
        return None if row is None else session_from_row(row)

    async def revoke_session(self, token_hash: str, at_ns: int) -> bool:
        cur = await self._db.write(
            lambda conn: conn.execute(
                "UPDATE sessions SET revoked_at_ns = ? WHERE token_hash = ?"
                " AND revoked_at_ns IS NULL",
                (at_ns, token_hash),
            )
        )
        return bool(cur.rowcount)

    async def session_secret(self, candidate: bytes, at_ns: int) -> bytes:
        def keep(conn: sqlite3.Connection) -> bytes:
            conn.execute("INSERT OR IGNORE INTO session_secret (id, secret, created_at_ns)"
                         " VALUES (1, ?, ?)", (candidate, at_ns))
            return bytes(conn.execute("SELECT secret FROM session_secret").fetchone()[0])

        return await self._db.write(keep)
