"""Choose the broker, the store and the velocity counter from the settings' URLs."""

from __future__ import annotations

from urllib.parse import urlsplit

from loanflow.broker.base import Broker
from loanflow.broker.sqlite import SQLiteBroker
from loanflow.pipeline.velocity import VelocityCounter
from loanflow.settings import Settings
from loanflow.store.base import Store
from loanflow.store.sqlite import SQLiteStore

BROKER_FILE = "broker.db"
STORE_FILE = "store.db"


def make_broker(settings: Settings) -> Broker:
    url = _well_formed(settings.broker_url, "LOANFLOW_BROKER_URL")
    if not url:
        return SQLiteBroker(
            settings.data_dir / BROKER_FILE, visibility_timeout_s=settings.visibility_timeout_s,
            poll_interval_s=settings.poll_interval_s,
        )
    if _scheme(url) in ("redis", "rediss", "unix"):
        from loanflow.backends.redis.broker import RedisStreamsBroker

        return RedisStreamsBroker.from_url(url, visibility_timeout_s=settings.visibility_timeout_s,
                                           allow_unsafe=settings.unsafe_redis)
    raise ValueError(
        f"expected an empty LOANFLOW_BROKER_URL (embedded) or redis://…, got {_scheme(url)}://…"
    )


def make_store(settings: Settings) -> Store:
    url = _well_formed(settings.store_url, "LOANFLOW_STORE_URL")
    if not url:
        return SQLiteStore(settings.data_dir / STORE_FILE)
    if _scheme(url) in ("postgresql", "postgres"):
        from loanflow.store.postgres import PostgresStore

        return PostgresStore(url, statement_timeout_s=settings.store_timeout_s)
    raise ValueError(
        f"expected an empty LOANFLOW_STORE_URL (embedded) or postgresql://…, got {_scheme(url)}://…"
    )


def make_velocity_counter(settings: Settings) -> VelocityCounter:
    """The broker's Redis, so every host counts together; else the embedded store's file."""
    if settings.broker_url:
        from loanflow.backends.redis.velocity import RedisVelocityCounter

        return RedisVelocityCounter.from_url(settings.broker_url,
                                              allow_unsafe=settings.unsafe_redis)
    if not settings.store_url:
        from loanflow.pipeline.velocity_sqlite import SQLiteVelocityCounter

        return SQLiteVelocityCounter(settings.data_dir / STORE_FILE)
    raise ValueError(
        "expected a redis:// broker URL or the embedded store for the velocity counts,"
        f" got the embedded broker with a {_scheme(settings.store_url)}:// store"
    )


def _well_formed(url: str, setting: str) -> str:
    """`url`, once its host and port parse: else a ValueError naming `setting`, at start
    rather than from deep inside a client."""
    try:
        parts = urlsplit(url)
        if "," not in parts.netloc:  # a multi-host PostgreSQL URL has a port per host
            _ = parts.port  # ValueError: not a number, or out of range
    except ValueError as exc:
        raise ValueError(f"{setting}: malformed {_scheme(url)}:// URL: {exc}") from exc
    return url


def _scheme(url: str) -> str:
    # Only the scheme: a URL may carry a password.
    return url.partition("://")[0]
