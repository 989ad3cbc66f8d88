"""One translation of Redis client failures into our Unavailable errors, for every Redis user.

Every Redis error (connection, timeout, OOM, LOADING, ...) and OSError means the
backend is unavailable, and so does uvloop's RuntimeError for a write on a
connection Redis already closed: redis-py lets that one through (asyncio would
raise an OSError), so without this a Redis dying or restarting would surface as
a bug (a 500, a dead task) instead of an outage (a 503, a retry).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from redis.exceptions import RedisError

from loanflow.errors import Unavailable


@contextlib.contextmanager
def unavailable_as(error: type[Unavailable], what: str) -> Iterator[None]:
    """Raise `error("<what> failed: …")` for any failure of the Redis call inside."""
    try:
        yield
    except (RedisError, OSError) as exc:
        raise error(f"{what} failed: {type(exc).__name__}: {exc}") from exc
    except RuntimeError as exc:
        if not closed_connection(exc):
            raise
        raise error(f"{what} failed: connection closed by Redis") from exc


def closed_connection(exc: RuntimeError) -> bool:
    """uvloop's error for a write on a connection Redis has already closed."""
    return "the handler is closed" in str(exc)
