"""What a store promises for dashboard logins (logins.py), and the SQL both backends share.

- A login code is redeemed at most once, before it expires, even when many
  processes present it at the same moment: the check and the mark are one
  statement.
- Codes and session tokens are kept as hashes only.
- `session_secret` answers the first secret ever offered, on every process of
  every host, so each of them signs and checks the same cookies.
"""

from __future__ import annotations

from typing import Any, Protocol

from loanflow.logins import LoginCode, Redeemed, Session, parse_scopes_text

CODE_COLUMNS = "id, label, scopes, created_at_ns, expires_at_ns, used_at_ns"
SESSION_COLUMNS = (
    "id, actor, label, scopes, created_at_ns, expires_at_ns, key_hash, revoked_at_ns"
)


class LoginStore(Protocol):
    async def create_login_code(self, code: LoginCode, code_hash: str) -> None:
        """Keep a new code; rows long past their expiry are deleted on the way."""
        ...

    async def redeem_login_code(
        self, code_hash: str, at_ns: int
    ) -> tuple[Redeemed, LoginCode | None]:
        """Mark the code used if it is unused and unexpired at `at_ns`: (OK, the code);
        else why not, and None."""
        ...

    async def create_session(self, session: Session, token_hash: str) -> None:
        """Keep a new session; rows long past their expiry are deleted on the way."""
        ...

    async def find_session(self, token_hash: str) -> Session | None:
        """The session, revoked and expired ones included (the caller checks `usable`)."""
        ...

    async def revoke_session(self, token_hash: str, at_ns: int) -> bool:
        """Revoke an active session; False if there was none to revoke."""
        ...

    async def session_secret(self, candidate: bytes, at_ns: int) -> bytes:
        """The secret sessions are signed with: `candidate` if none was kept yet."""
        ...


def code_from_row(row: Any) -> LoginCode:
    code_id, label, scopes, created, expires, used = tuple(row)
    return LoginCode(id=code_id, label=label, scopes=parse_scopes_text(scopes),
                     created_at_ns=created, expires_at_ns=expires, used_at_ns=used)


def session_from_row(row: Any) -> Session:
    session_id, actor, label, scopes, created, expires, key_hash, revoked = tuple(row)
    return Session(id=session_id, actor=actor, label=label, scopes=parse_scopes_text(scopes),
                   created_at_ns=created, expires_at_ns=expires, key_hash=key_hash,
                   revoked_at_ns=revoked)


def why_not_redeemed(*, known: bool, used_at_ns: int | None) -> Redeemed:
    """Why a code could not be redeemed, from what its row (if any) says."""
    if not known:
        return Redeemed.UNKNOWN
    return Redeemed.EXPIRED if used_at_ns is None else Redeemed.USED
