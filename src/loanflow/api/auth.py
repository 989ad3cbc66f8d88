"""Authentication and scope checks: API keys (Bearer) and dashboard session cookies.

Key lookups are cached briefly in front of the store, so a revocation takes
effect within CACHE_TTL_S on every process. While the store cannot be reached,
the last answer it gave is trusted for up to STALE_MAX_S: a submission needs
only the broker to be made durable, so a store outage must not stop intake
(a revocation made during the outage could not be read anyway).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from loanflow.api.session import COOKIE, CSRF_HEADER, SessionCodec
from loanflow.apikeys import PREFIX, ApiKey, Scope, hash_key
from loanflow.errors import Forbidden, StoreUnavailable, Unauthenticated
from loanflow.store.base import Store

log = logging.getLogger(__name__)

#: How long a key lookup is trusted; a revocation takes effect within this time.
CACHE_TTL_S = 5.0
#: How long a lookup stays usable while the store is unavailable.
STALE_MAX_S = 600.0
#: After a failed lookup, how long the stale answer serves before the store is asked
#: again: a frozen store then costs one slow lookup per key per interval, not per request.
RETRY_LOOKUP_S = 1.0
#: Bounds the cache so random bad keys cannot grow memory without end.
CACHE_MAX = 10_000
#: Methods that change nothing, so a cookie alone may authorise them.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class _Lookup:
    key: ApiKey | None
    answered_at: float  # when the store last answered for this digest (monotonic)
    ask_again_at: float  # until then the answer is used without asking


class Authenticator:
    def __init__(self, store: Store, sessions: SessionCodec) -> None:
        self._store = store
        self.sessions = sessions
        self._cache: dict[str, _Lookup] = {}
        self._asking: set[str] = set()

    async def require(self, conn: HTTPConnection, scope: Scope) -> ApiKey:
        """The caller's key if valid and holding `scope`; else 401 or 403.

        A Bearer key is checked first; without one, the dashboard session cookie,
        which for a state change must come with its CSRF token in a header.
        """
        header = conn.headers.get("authorization")
        if header is not None:
            return await self.require_bearer(header, scope)
        return _holding(await self._key_for_session(conn), scope)

    async def require_bearer(self, authorization: str, scope: Scope) -> ApiKey:
        """The key an `Authorization: Bearer` header names, if valid and holding `scope`."""
        secret = authorization.partition(" ")[2].strip() if (
            authorization[:7].lower() == "bearer ") else ""
        return _holding(await self.key_for_secret(secret), scope)

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
        usable = cached if cached is not None and now - cached.answered_at <= STALE_MAX_S else None
        if usable and (now < usable.ask_again_at or digest in self._asking):
            # Fresh, or another request is asking the store right now: no pile-up on it.
            return usable.key
        self._asking.add(digest)
        try:
            key = await self._store.find_api_key(digest)
        except StoreUnavailable as exc:
            if usable is None:
                raise
            usable.ask_again_at = time.monotonic() + RETRY_LOOKUP_S
            log.warning("key lookup failed, using the store's answer of %.0fs ago: %s",
                        now - usable.answered_at, exc)
            return usable.key
        finally:
            self._asking.discard(digest)
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        answered_at = time.monotonic()
        self._cache[digest] = _Lookup(key, answered_at, answered_at + CACHE_TTL_S)
        return key


def _holding(key: ApiKey, scope: Scope) -> ApiKey:
    if scope not in key.scopes:
        raise Forbidden(f"this key lacks the {scope.value!r} scope")
    return key
