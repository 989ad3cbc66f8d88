"""Authentication and scope checks: API keys (Bearer) and dashboard session cookies.

Key and session lookups go through a short cache in front of the store
(lookup_cache.py): a revocation takes effect within its TTL on every process,
and a store outage does not stop intake.
"""

from __future__ import annotations

import time

from starlette.requests import HTTPConnection

from loanflow.api.lookup_cache import LookupCache
from loanflow.api.session import CSRF_HEADER, Sessions
from loanflow.apikeys import PREFIX, ApiKey, Scope, hash_key
from loanflow.errors import Forbidden, Unauthenticated
from loanflow.store.base import Store

#: Methods that change nothing, so a cookie alone may authorise them.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Authenticator:
    def __init__(self, store: Store, sessions: Sessions) -> None:
        self.sessions = sessions
        self._keys = LookupCache(store.find_api_key, what="key")

    def forget_key(self, key_id: str) -> None:
        """This process changed the key (revoked it): ask the store next time it is used."""
        self._keys.forget_found(lambda key: key.id == key_id)

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
        return self._usable(await self._keys.get(hash_key(secret)))

    async def _key_for_session(self, conn: HTTPConnection) -> ApiKey:
        active = await self.sessions.current(conn)
        if active is None:
            raise Unauthenticated("send `Authorization: Bearer <API key>` or log in")
        method = conn.scope.get("method")  # None for a WebSocket
        changes_state = method is not None and method not in SAFE_METHODS
        if changes_state and not active.csrf_matches(conn.headers.get(CSRF_HEADER)):
            raise Forbidden(f"a session request that changes state needs {CSRF_HEADER}")
        session = active.session
        if session.key_hash is not None:
            # Opened with an API key: the key's own state and scopes rule.
            return self._usable(await self._keys.get(session.key_hash))
        return ApiKey(id=session.actor, label=session.label, scopes=session.scopes,
                      created_at_ns=session.created_at_ns, expires_at_ns=session.expires_at_ns)

    def _usable(self, key: ApiKey | None) -> ApiKey:
        if key is None or not key.usable(time.time_ns()):
            raise Unauthenticated("the API key is unknown, revoked or expired")
        return key


def _holding(key: ApiKey, scope: Scope) -> ApiKey:
    if scope not in key.scopes:
        raise Forbidden(f"this key lacks the {scope.value!r} scope")
    return key
