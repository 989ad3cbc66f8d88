"""The dashboard-login half of the PostgreSQL store: login codes, sessions, their secret."""

from __future__ import annotations

from loanflow.backends.postgres.pooled import Pooled
from loanflow.logins import KEEP_EXPIRED_S, LoginCode, Redeemed, Session, scopes_text
from loanflow.store.logins import (
    CODE_COLUMNS,
    SESSION_COLUMNS,
    code_from_row,
    session_from_row,
    why_not_redeemed,
)

_KEEP_EXPIRED_NS = KEEP_EXPIRED_S * 1_000_000_000


class PostgresLogins(Pooled):
    """Dashboard logins: one-time codes, sessions, their signing secret."""

    async def create_login_code(self, code: LoginCode, code_hash: str) -> None:
        async with self._transaction("create_login_code") as conn:
            await conn.execute("DELETE FROM login_codes WHERE expires_at_ns < $1",
                               code.created_at_ns - _KEEP_EXPIRED_NS)
            await conn.execute(
                f"INSERT INTO login_codes (code_hash, {CODE_COLUMNS})"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                code_hash, code.id, code.label, scopes_text(code.scopes), code.created_at_ns,
                code.expires_at_ns, code.used_at_ns,
            )

    async def redeem_login_code(
        self, code_hash: str, at_ns: int
    ) -> tuple[Redeemed, LoginCode | None]:
        async with self._connection("redeem_login_code") as conn:
            # One statement: under READ COMMITTED a concurrent redemption waits for the
            # row lock, re-checks `used_at_ns IS NULL` and finds it used.
            row = await conn.fetchrow(
                "UPDATE login_codes SET used_at_ns = $2 WHERE code_hash = $1"
                f" AND used_at_ns IS NULL AND expires_at_ns > $2 RETURNING {CODE_COLUMNS}",
                code_hash, at_ns,
            )
            if row is not None:
                return Redeemed.OK, code_from_row(row.values())
            seen = await conn.fetchrow(
                "SELECT used_at_ns FROM login_codes WHERE code_hash = $1", code_hash
            )
        return why_not_redeemed(known=seen is not None, used_at_ns=seen and seen[0]), None

    async def create_session(self, session: Session, token_hash: str) -> None:
        async with self._transaction("create_session") as conn:
            await conn.execute("DELETE FROM sessions WHERE expires_at_ns < $1",
                               session.created_at_ns - _KEEP_EXPIRED_NS)
            await conn.execute(
                f"INSERT INTO sessions (token_hash, {SESSION_COLUMNS})"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                token_hash, session.id, session.actor, session.label,
                scopes_text(session.scopes), session.created_at_ns, session.expires_at_ns,
                session.key_hash, session.revoked_at_ns,
            )

    async def find_session(self, token_hash: str) -> Session | None:
        async with self._connection("find_session") as conn:
            row = await conn.fetchrow(
                f"SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1", token_hash
            )
        return None if row is None else session_from_row(row.values())

    async def revoke_session(self, token_hash: str, at_ns: int) -> bool:
        async with self._connection("revoke_session") as conn:
            status = await conn.execute(
                "UPDATE sessions SET revoked_at_ns = $2 WHERE token_hash = $1"
                " AND revoked_at_ns IS NULL",
                token_hash, at_ns,
            )
        return bool(status != "UPDATE 0")

    async def session_secret(self, candidate: bytes, at_ns: int) -> bytes:
        async with self._connection("session_secret") as conn:
            await conn.execute(
                "INSERT INTO session_secret (id, secret, created_at_ns) VALUES (1, $1, $2)"
                " ON CONFLICT (id) DO NOTHING",
                candidate, at_ns,
            )
            secret = await conn.fetchval("SELECT secret FROM session_secret WHERE id = 1")
        return bytes(secret)
