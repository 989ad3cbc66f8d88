"""A short cache in front of the store for what every request looks up: API keys, sessions.

An answer is trusted for CACHE_TTL_S, so a revocation takes effect within that
time on every process (at once on the process that revoked, which forgets it).
While the store cannot be reached, the last answer it gave is trusted for up to
STALE_MAX_S: a submission needs only the broker to be made durable, so a store
outage must not stop intake (a revocation made during the outage could not be
read anyway).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from loanflow.errors import StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long a lookup is trusted by default; a revocation takes effect within this time.
CACHE_TTL_S = 5.0
#: How long a lookup stays usable while the store is unavailable.
STALE_MAX_S = 600.0
#: After a failed lookup, how long the stale answer serves before the store is asked
#: again: a frozen store then costs one slow lookup per digest per interval, not per request.
RETRY_LOOKUP_S = 1.0
#: Bounds the cache so random bad digests cannot grow memory without end.
CACHE_MAX = 10_000


@dataclass
class _Lookup(Generic[T]):
    found: T | None
    answered_at: float  # when the store last answered for this digest (monotonic)
    ask_again_at: float  # until then the answer is used without asking


class LookupCache(Generic[T]):
    """`get(digest)`: what `fetch(digest)` answered lately, by the rules above; `ttl_s`
    0 asks the store every time and keeps the answer only for an outage."""

    def __init__(
        self, fetch: Callable[[str], Awaitable[T | None]], *, what: str,
        ttl_s: float = CACHE_TTL_S,
    ) -> None:
        self._fetch = fetch
        self._what = what
        self._ttl_s = ttl_s
        self._cache: dict[str, _Lookup[T]] = {}
        self._asking: set[str] = set()

    async def get(self, digest: str) -> T | None:
        now = time.monotonic()
        cached = self._cache.get(digest)
        usable = cached if cached is not None and now - cached.answered_at <= STALE_MAX_S else None
        if usable and (now < usable.ask_again_at or digest in self._asking):
            # Fresh, or another request is asking the store right now: no pile-up on it.
            return usable.found
        self._asking.add(digest)
        try:
            found = await self._fetch(digest)
        except StoreUnavailable as exc:
            if usable is None:
                raise
            usable.ask_again_at = time.monotonic() + RETRY_LOOKUP_S
            log.warning("%s lookup failed, using the store's answer of %.0fs ago: %s",
                        self._what, now - usable.answered_at, exc)
            return usable.found
        finally:
            self._asking.discard(digest)
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        answered_at = time.monotonic()
        self._cache[digest] = _Lookup(found, answered_at, answered_at + self._ttl_s)
        return found

    def forget(self, digest: str) -> None:
        """Ask the store next time: this process just changed the answer."""
        self._cache.pop(digest, None)

    def forget_found(self, changed: Callable[[T], bool]) -> None:
        """`forget` every answer `changed` picks, for a change known by what was found
        (a key's id) rather than by the digest it was looked up with."""
        for digest in [d for d, c in self._cache.items() if c.found is not None
                       and changed(c.found)]:
            del self._cache[digest]
