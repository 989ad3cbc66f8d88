"""Dashboard logins: one-time login codes and the server-side sessions they open.

A login code is printed by `serve` and `loanflow login-code`; it works once, for
LOGIN_CODE_TTL_S, and the store keeps only its hash, so any API process of any
host can redeem it and a copy of the store cannot. Redeeming a code (or posting
an API key with the read scope) opens a session: a row in the store, found by
the hash of a random token the browser holds in its cookie. Logging out revokes
the row; an expired or revoked row is refused.
"""

from __future__ import annotations

import enum
import hashlib
import secrets

import msgspec

from loanflow.apikeys import Scope

#: A login code works for this long after it was made, and only once.
LOGIN_CODE_TTL_S = 10 * 60
#: A session lasts this long (a key's session never beyond the key's own expiry).
SESSION_TTL_S = 12 * 3600
#: Rows this long past their expiry are deleted when the next one is made; until then
#: a code's row tells "already used" and "expired" apart from "unknown".
KEEP_EXPIRED_S = 24 * 3600
#: Scopes of a session opened with a login code unless `login-code --scopes` says others:
#: what an operator at the terminal needs.
LOGIN_CODE_SCOPES = frozenset({Scope.READ, Scope.OPERATE})
#: Login codes start with this, API keys with `lf_`: the sign-in form takes either.
CODE_PREFIX = "lc_"


class Redeemed(enum.StrEnum):
    """What became of a login code that was presented."""

    OK = "ok"
    USED = "used"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


class LoginCode(msgspec.Struct, frozen=True, kw_only=True):
    """A stored login code: everything but the secret."""

    id: str
    label: str
    scopes: frozenset[Scope]
    created_at_ns: int
    expires_at_ns: int
    used_at_ns: int | None = None


class Session(msgspec.Struct, frozen=True, kw_only=True):
    """A stored dashboard session: everything but its token.

    `actor` names it in the audit trail (the key's id, or `login-<code id>`);
    `key_hash` binds a session opened with an API key to that key, so revoking
    the key ends the session too.
    """

    id: str
    actor: str
    label: str
    scopes: frozenset[Scope]
    created_at_ns: int
    expires_at_ns: int
    key_hash: str | None = None
    revoked_at_ns: int | None = None

    def usable(self, now_ns: int) -> bool:
        return self.revoked_at_ns is None and now_ns < self.expires_at_ns


def new_login_code(*, label: str, now_ns: int,
                   scopes: frozenset[Scope] = LOGIN_CODE_SCOPES) -> tuple[LoginCode, str]:
    """A new (stored record, secret code); the secret is shown once and never stored."""
    code = LoginCode(
        id=secrets.token_hex(6),
        label=label,
        scopes=scopes,
        created_at_ns=now_ns,
        expires_at_ns=now_ns + LOGIN_CODE_TTL_S * 1_000_000_000,
    )
    return code, CODE_PREFIX + secrets.token_urlsafe(24)


def hash_secret(secret: str) -> str:
    """SHA-256 as hex: codes and session tokens carry 192+ random bits, so a fast hash
    is enough (nobody can guess one), as for API keys."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def scopes_text(scopes: frozenset[Scope]) -> str:
    return ",".join(sorted(scopes))


def parse_scopes_text(text: str) -> frozenset[Scope]:
    return frozenset(Scope(s) for s in text.split(",") if s)
