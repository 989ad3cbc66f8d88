"""Authentication and scope checks: API keys (Bearer) and dashboard session cookies.

Key lookups are cached briefly in front of the store, so a revocation takes
effect within CACHE_TTL_S on every process.
"""

from __future__ import annotations

import time

from starlette.requests import HTTPConnection

from loanflow.api.session import COOKIE, CSRF_HEADER, SessionCodec
from loanflow.apikeys import PREFIX, ApiKey, Scope, hash_key
from loanflow.errors import Forbidden, Unauthenticated
from loanflow.store.base import Store

#: How long a key lookup is trusted; a revocation takes effect within this time.
CACHE_TTL_S = 5.0
#: Bounds the cache so random bad keys cannot grow memory without end.
CACHE_MAX = 10_000
#: Methods that change nothing, so a cookie alone may authorise them.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Authenticator:
    def __init__(self, store: Store, sessions: SessionCodec) -> None:
        self._store = store
        self.sessions = sessions
        self._cache: dict[str, tuple[ApiKey | None, float]] = {}

    async def require(self, conn: HTTPConnection, scope: Scope) -> ApiKey:
        """The caller's key if valid and holding `scope`; else 401 or 403.

        A Bearer key is checked first; without one, the dashboard session cookie,
        which for a state change must come with its CSRF token in a header.
        """
        header = conn.headers.get("authorization")
        if header is not None:
            key = await self.key_for_secret(header.partition(" ")[2].strip()
                                            if header[:7].lower() == "bearer " else "")
        else:
            key = await self._key_for_session(conn)
        if scope not in key.scopes:
            raise Forbidden(f"this key lacks the {scope.value!r} scope")
        return key

    async def key_for_secret(self, secret: str) -> ApiKey:
        """The usable key a secret names, or 401."""
        if not secret.startswith(PREFIX):
            raise Unauthenticated("send `Authorization: Bearer <API key>`")
        return self._usable(await self._lookup(hash_key(secret)))

    async def _key_for_session(self, conn: HTTPConnection) -> ApiKey:
        cookie = conn.cookies.get(COOKIE)
        claims = self.sessions.read(cookie) if cookie else None
        if claims is None:
            raise Unauthenticated("send `Authorization: Bearer <API key>` or log in")
        method = conn.scope.get("method")  # None for a WebSocket
        changes_state = method is not None and method not in SAFE_METHODS
        if changes_state and conn.headers.get(CSRF_HEADER) != claims.csrf:
            raise Forbidden(f"a session request that changes state needs {CSRF_HEADER}")
        return self._usable(await self._lookup(claims.key_hash))

    def _usable(self, key: ApiKey | None) -> ApiKey:
        if key is None or not key.usable(time.time_ns()):
            raise Unauthenticated("the API key is unknown, revoked or expired")
        return key

    async def _lookup(self, digest: str) -> ApiKey | None:
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[1] < CACHE_TTL_S:
            return cached[0]
        key = await self._store.find_api_key(digest)
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[digest] = (key, now)
        return key
