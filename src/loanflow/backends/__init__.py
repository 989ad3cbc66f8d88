"""A process's backends, chosen from the settings' URLs: the one place that reads them.

LOANFLOW_BROKER_URL `redis://` (`rediss://`, `unix://`, or `redis+sentinel://`
to find the primary through Sentinel and follow it on failover): the broker, the
velocity counts, the metrics series and events and the rate limiter all live
in that Redis, on one RedisClient (one connection pool) per process; empty:
SQLite files in the data directory and a rate limit per process.
LOANFLOW_STORE_URL `postgresql://` (several hosts, a primary and its standbys, to
follow the primary on failover: backends/postgres/hosts.py), or empty: the SQLite store
file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from loanflow.backends.sqlite.broker import SQLiteBroker
from loanflow.backends.sqlite.events import SQLiteEventLog
from loanflow.backends.sqlite.series import SQLiteSeries
from loanflow.backends.sqlite.store import SQLiteStore
from loanflow.broker.base import Broker
from loanflow.broker.ratelimit import RateLimiter, TokenBucketLimiter
from loanflow.metrics.events import EventLog
from loanflow.metrics.series_base import MetricsSeries
from loanflow.pipeline.velocity import VelocityCounter
from loanflow.settings import Settings
from loanflow.store.base import Store

#: Embedded files, in the data directory.
BROKER_FILE = "broker.db"
STORE_FILE = "store.db"
SERIES_FILE = "metrics.db"
EVENTS_FILE = "events.db"
_REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel")
_POSTGRES_SCHEMES = ("postgresql", "postgres")

if TYPE_CHECKING:  # the embedded mode never imports redis
    from loanflow.backends.redis.client import RedisClient


@dataclass(frozen=True)
class Backends:
    """Built, not opened: the runtime opens each in its order, `redis` first of all."""

    broker: Broker
    store: Store
    velocity: VelocityCounter
    series: MetricsSeries
    events: EventLog
    limiter: RateLimiter
    #: The one Redis client every Redis service above shares; None when embedded.
    redis: RedisClient | None


def make_backends(settings: Settings) -> Backends:
    _well_formed(settings.store_url, "LOANFLOW_STORE_URL")  # named first when malformed
    if _redis_broker(settings):
        return _redis_backends(settings, make_store(settings))
    if settings.redis_min_replicas:
        raise ValueError("LOANFLOW_REDIS_MIN_REPLICAS: expected a redis:// or"
                         " redis+sentinel:// LOANFLOW_BROKER_URL, got the embedded broker")
    if settings.store_url:
        raise ValueError(
            "expected a redis:// broker URL or the embedded store for the velocity counts,"
            f" got the embedded broker with a {_scheme(settings.store_url)}:// store"
        )
    data = settings.data_dir
    store = _sqlite_store(settings)
    from loanflow.backends.sqlite.velocity import SQLiteVelocityCounter

    return Backends(
        broker=SQLiteBroker(data / BROKER_FILE, visibility_timeout_s=settings.visibility_timeout_s,
                            poll_interval_s=settings.poll_interval_s,
                            idempotency_window_s=settings.idempotency_window_s),
        store=store,
        velocity=SQLiteVelocityCounter(store.database),
        series=SQLiteSeries(data / SERIES_FILE),
        events=SQLiteEventLog(data / EVENTS_FILE),
        # Per process: each of the host's API processes takes an equal share.
        limiter=TokenBucketLimiter(rate_per_s=settings.rate_limit_per_s,
                                   burst=settings.rate_limit_burst,
                                   processes=settings.api_workers),
        redis=None,
    )


def make_store(settings: Settings) -> Store:
    """The store alone, for the commands that need nothing else."""
    url = _well_formed(settings.store_url, "LOANFLOW_STORE_URL")
    if not url:
        return _sqlite_store(settings)
    if _scheme(url) in _POSTGRES_SCHEMES:
        from loanflow.backends.postgres.store import PostgresStore

        return PostgresStore(url, statement_timeout_s=settings.store_timeout_s)
    raise ValueError(
        f"expected an empty LOANFLOW_STORE_URL (embedded) or postgresql://…, got {_scheme(url)}://…"
    )


def _sqlite_store(settings: Settings) -> SQLiteStore:
    return SQLiteStore(settings.data_dir / STORE_FILE)


def _redis_backends(settings: Settings, store: Store) -> Backends:
    from loanflow.backends.redis.broker import RedisStreamsBroker
    from loanflow.backends.redis.client import RedisClient
    from loanflow.backends.redis.events import RedisEventLog
    from loanflow.backends.redis.ratelimit import RedisTokenBucketLimiter
    from loanflow.backends.redis.series import RedisSeries
    from loanflow.backends.redis.velocity import RedisVelocityCounter

    client = RedisClient(settings.broker_url, allow_unsafe=settings.unsafe_redis)
    return Backends(
        broker=RedisStreamsBroker(client, visibility_timeout_s=settings.visibility_timeout_s,
                                  idempotency_window_s=settings.idempotency_window_s,
                                  min_replicas=settings.redis_min_replicas,
                                  replica_wait_ms=settings.redis_wait_ms),
        store=store,
        # The broker's Redis, so every host counts together.
        velocity=RedisVelocityCounter(client),
        series=RedisSeries(client),
        events=RedisEventLog(client),
        # Shared by every API process on every host; a submission's token is taken by its
        # append.
        limiter=RedisTokenBucketLimiter(client, rate_per_s=settings.rate_limit_per_s,
                                        burst=settings.rate_limit_burst),
        redis=client,
    )


def _redis_broker(settings: Settings) -> bool:
    url = _well_formed(settings.broker_url, "LOANFLOW_BROKER_URL")
    if not url:
        return False
    if _scheme(url) in _REDIS_SCHEMES:
        return True
    raise ValueError(
        "expected an empty LOANFLOW_BROKER_URL (embedded) or a redis:// broker URL,"
        f" got {_scheme(url)}://…"
    )


def _well_formed(url: str, setting: str) -> str:
    """`url`, once its host and port parse: else a ValueError naming `setting`, at start
    rather than from deep inside a client."""
    if _scheme(url) == "redis+sentinel":
        from loanflow.backends.redis.sentinel import parse

        try:
            parse(url)
        except ValueError as exc:
            raise ValueError(f"{setting}: malformed redis+sentinel:// URL: {exc}") from exc
        return url
    try:
        if _scheme(url) in _POSTGRES_SCHEMES:  # one host or several, each with its port
            from loanflow.backends.postgres import hosts

            hosts.parse(url)
        else:
            _ = urlsplit(url).port  # ValueError: not a number, or out of range
    except ValueError as exc:
        raise ValueError(f"{setting}: malformed {_scheme(url)}:// URL: {exc}") from exc
    return url


def _scheme(url: str) -> str:
    # Only the scheme: a URL may carry a password.
    return url.partition("://")[0]
