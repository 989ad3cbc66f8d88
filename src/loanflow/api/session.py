"""Dashboard sessions: an HttpOnly, SameSite=Strict cookie naming a session row in the store.

The cookie is `<token>.<signature>`: 256 random bits, and their HMAC under the
session secret (store/logins.py: made once, shared by every API process of
every host). The store keeps only the SHA-256 of the token, so neither a copy
of the store nor the data directory gives anyone a cookie that works: a session
exists only while its row does, and logging out revokes the row. The signature
turns away forged and random cookies before any store lookup. The CSRF token a
state change must send in a header is an HMAC of the token too, so it needs no
storage and is the same on every process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from loanflow.api.lookup_cache import LookupCache
from loanflow.apikeys import Scope
from loanflow.logins import SESSION_TTL_S, Session, hash_secret
from loanflow.store.base import Store

#: Name of the session cookie.
COOKIE = "loanflow_session"
#: Header a cookie-authenticated state change must carry.
CSRF_HEADER = "x-csrf-token"
#: A cookie we could have issued: two unpadded base64url SHA-256-sized parts, ASCII only.
_COOKIE_SHAPE = re.compile(r"([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{43})", re.ASCII)
_SECRET_BYTES = 32
#: Where a request keeps its session once read: auth and the route both ask for it.
_SCOPE_KEY = "loanflow.session"


@dataclass(frozen=True)
class ActiveSession:
    """The session a request's cookie names, usable now."""

    token_hash: str
    session: Session
    csrf: str

    def __repr__(self) -> str:
        return f"ActiveSession(id={self.session.id!r}, actor={self.session.actor!r})"

    def csrf_matches(self, header: str | None) -> bool:
        # Bytes on both sides: compare_digest refuses a str with non-ASCII characters.
        sent = (header or "").encode("utf-8", "replace")
        return hmac.compare_digest(self.csrf.encode(), sent)


class Sessions:
    """Opens, reads and revokes dashboard sessions. Never shows a token or the secret."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._secret: bytes | None = None
        # Asked every time (a dashboard makes few requests): a logout ends the session on
        # every process at once. The last answer serves only while the store is down.
        self._lookups = LookupCache(store.find_session, what="session", ttl_s=0.0)

    def __repr__(self) -> str:
        return f"Sessions({self._store!r})"

    async def open(
        self, *, actor: str, label: str, scopes: frozenset[Scope], key_hash: str | None = None,
        not_after_ns: int | None = None,
    ) -> tuple[str, Session]:
        """A new session row and the cookie value that names it."""
        now_ns = time.time_ns()
        expires_at_ns = now_ns + SESSION_TTL_S * 1_000_000_000
        if not_after_ns is not None:
            expires_at_ns = min(expires_at_ns, not_after_ns)
        session = Session(id=secrets.token_hex(6), actor=actor, label=label, scopes=scopes,
                          created_at_ns=now_ns, expires_at_ns=expires_at_ns, key_hash=key_hash)
        token = secrets.token_urlsafe(_SECRET_BYTES)
        await self._store.create_session(session, hash_secret(token))
        return f"{token}.{await self._mac(b'cookie', token)}", session

    async def current(self, conn: HTTPConnection) -> ActiveSession | None:
        """The usable session the request's cookie names, else None; never raises on what
        a client sent (a malformed, non-ASCII or forged cookie is simply no session)."""
        if _SCOPE_KEY not in conn.scope:
            conn.scope[_SCOPE_KEY] = await self._read(conn)
        active: ActiveSession | None = conn.scope[_SCOPE_KEY]
        return active

    async def _read(self, conn: HTTPConnection) -> ActiveSession | None:
        shape = _COOKIE_SHAPE.fullmatch(conn.cookies.get(COOKIE) or "")
        if shape is None:
            return None
        token, signature = shape.groups()
        expected = await self._mac(b"cookie", token)
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return None
        token_hash = hash_secret(token)
        session = await self._lookups.get(token_hash)
        if session is None or not session.usable(time.time_ns()):
            return None
        return ActiveSession(token_hash, session, await self._mac(b"csrf", token))

    async def revoke(self, active: ActiveSession) -> None:
        await self._store.revoke_session(active.token_hash, time.time_ns())
        self._lookups.forget(active.token_hash)

    async def _mac(self, purpose: bytes, token: str) -> str:
        if self._secret is None:
            # Concurrent first calls may both ask: the store answers each the same secret.
            self._secret = await self._store.session_secret(
                os.urandom(_SECRET_BYTES), time.time_ns())
        digest = hmac.new(self._secret, purpose + b":" + token.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
