"""API-key authentication and scope checks, with a short cache in front of the store."""

from __future__ import annotations

import time

from starlette.requests import Request

from loanflow.apikeys import PREFIX, ApiKey, Scope, hash_key
from loanflow.errors import Forbidden, Unauthenticated
from loanflow.store.base import Store

#: How long a key lookup is trusted; a revocation takes effect within this time.
CACHE_TTL_S = 5.0
#: Bounds the cache so random bad keys cannot grow memory without end.
CACHE_MAX = 10_000


class Authenticator:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[str, tuple[ApiKey | None, float]] = {}

    async def require(self, request: Request, scope: Scope) -> ApiKey:
        """The request's key if it is valid and holds `scope`; else 401 or 403."""
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.startswith(PREFIX):
            raise Unauthenticated("send `Authorization: Bearer <API key>`")
        key = await self._lookup(secret.strip())
        now_ns = time.time_ns()
        if key is None or not key.usable(now_ns):
            raise Unauthenticated("the API key is unknown, revoked or expired")
        if scope not in key.scopes:
            raise Forbidden(f"this key lacks the {scope.value!r} scope")
        return key

    async def _lookup(self, secret: str) -> ApiKey | None:
        digest = hash_key(secret)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[1] < CACHE_TTL_S:
            return cached[0]
        key = await self._store.find_api_key(digest)
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[digest] = (key, now)
        return key
