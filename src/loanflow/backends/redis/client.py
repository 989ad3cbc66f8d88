"""The one Redis client of a process: one connection pool that every Redis service shares.

- A pool of up to `max_connections`: past that a call waits (up to the
  socket timeout) for a free connection rather than failing while Redis is
  fine; shedding load is the API's `limit_concurrency`'s job
  (`patches/redis_pool.py`).
- Every new connection is checked for durability (`durability.py`) and packs
  its commands with hiredis (`patches/redis_packing.py`).
- Socket timeouts bound the wait on a frozen Redis; only a dropped connection
  is retried, once (a pooled one Redis closed on restart): retrying a timeout
  would double a frozen Redis's wait.
- redis.asyncio connections belong to the loop that made them: `redis()`
  gives the running loop's client, made on first use there and closed when
  that loop shuts down (`patches/loop_shutdown.py`), so successive
  `asyncio.run()` calls may share one client (as the tests do).
- A `redis+sentinel://` URL (`sentinel.py`) finds the primary through Sentinel
  on each new connection, so every service follows it after a failover; the
  pool, the durability check and the packing are the same.
- Services take it as `client=` (dramatiq's rate-limit backends); whoever
  built it opens and closes it (`backends.open_backends`, or a service made
  `from_url`, which owns its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypedDict, Unpack
from urllib.parse import urlsplit

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError

from loanflow.backends.redis.durability import DurabilityGuard
from loanflow.backends.redis.errors import unavailable_as
from loanflow.backends.redis.sentinel import is_sentinel_url
from loanflow.backends.redis.sentinel import parse as parse_sentinel_url
from loanflow.errors import Unavailable
from loanflow.patches.loop_shutdown import close_at_shutdown
from loanflow.patches.redis_packing import pack_with_hiredis
from loanflow.patches.redis_pool import BoundedPool, BoundedSentinelPool

#: Connections per process at most; more concurrent calls wait for one.
MAX_CONNECTIONS = 64
SOCKET_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 2.0
#: What CLIENT LIST shows for each of the process's connections.
CLIENT_NAME = "loanflow"


class ClientOptions(TypedDict, total=False):
    """RedisClient's options, for a service's `from_url(url, **options)`."""

    socket_timeout_s: float
    connect_timeout_s: float
    max_connections: int
    allow_unsafe: bool


class RedisClient:
    def __init__(
        self,
        url: str,
        *,
        socket_timeout_s: float = SOCKET_TIMEOUT_S,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
        allow_unsafe: bool = False,
    ) -> None:
        self._url = url
        self.socket_timeout_s, self._connect_timeout_s = socket_timeout_s, connect_timeout_s
        self._max_connections = max_connections
        self._durability = DurabilityGuard(redact(url), allow_unsafe=allow_unsafe)
        self._opened = False
        self._redis: Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closer: AsyncGenerator[None, None] | None = None

    @property
    def durability(self) -> str:
        """What a 202 rests on (durability.py), as /readyz shows it."""
        return self._durability.in_force

    def __repr__(self) -> str:
        return f"RedisClient({redact(self._url)!r})"

    async def open(self) -> None:
        """Connections are made on first use: each service's `open` makes the first."""
        self._opened = True

    async def close(self) -> None:
        self._opened = False
        closer, loop = self._closer, self._loop
        self._redis = self._loop = self._closer = None
        # A client of another (finished) loop was closed when that loop shut down.
        if closer is not None and loop is asyncio.get_running_loop():
            await closer.aclose()

    def redis(self) -> Redis:
        """The running loop's client. Called once per operation: no await, one comparison."""
        if self._loop is asyncio.get_running_loop():
            return self._redis  # type: ignore[return-value]  # set whenever _loop is
        return self._bind_to_running_loop()

    def _bind_to_running_loop(self) -> Redis:
        if not self._opened:
            raise RuntimeError("expected an open RedisClient, got a closed one")
        options: dict[str, Any] = dict(
            max_connections=self._max_connections,
            timeout=self.socket_timeout_s,  # waiting for a free connection
            socket_timeout=self.socket_timeout_s,
            socket_connect_timeout=self._connect_timeout_s,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            client_name=CLIENT_NAME,
            driver_info=None,  # no CLIENT SETINFO: one round trip less per connect
            redis_connect_func=self._durability.on_connect,
        )
        sentinel: Sentinel | None = None
        pool: ConnectionPool
        if is_sentinel_url(self._url):
            target = parse_sentinel_url(self._url)
            # The Sentinels' own clients: the same timeouts, none of the data nodes' auth.
            sentinel = Sentinel(list(target.sentinels), sentinel_kwargs={  # type: ignore[no-untyped-call]
                "socket_timeout": self.socket_timeout_s,
                "socket_connect_timeout": self._connect_timeout_s,
            })
            pool = BoundedSentinelPool(
                service_name=target.service_name, sentinel_manager=sentinel, db=target.db,
                username=target.username, password=target.password, **options)
        else:
            pool = BoundedPool.from_url(self._url, **options)
        redis = Redis.from_pool(pack_with_hiredis(pool))
        self._redis, self._loop = redis, asyncio.get_running_loop()
        self._closer = close_at_shutdown(functools.partial(_close_quietly, redis, sentinel))
        return redis


class OnClient:
    """A Redis service on the process's client (`client=`), or on a client of its own
    (`from_url`, for tests and tools), which it then opens and closes itself."""

    #: What the service raises when Redis fails it, and how its messages begin.
    unavailable: ClassVar[type[Unavailable]]
    label: ClassVar[str]

    def __init__(self, client: RedisClient) -> None:
        self._client, self._owns_client = client, False
        self._redis = client.redis  # bound once: the running loop's redis.asyncio client

    @classmethod
    def from_url(cls, url: str, **options: Unpack[ClientOptions]) -> Self:
        made = cls(RedisClient(url, **options))
        made._owns_client = True
        return made

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._client!r})"

    async def open(self) -> None:
        if self._owns_client:
            await self._client.open()
        with self._unavailable("open"):
            await self._redis().ping()

    async def close(self) -> None:
        if self._owns_client:
            await self._client.close()

    def _unavailable(self, action: str) -> contextlib.AbstractContextManager[None]:
        return unavailable_as(self.unavailable, f"{self.label} {action}")


async def _close_quietly(redis: Redis, sentinel: Sentinel | None = None) -> None:
    with contextlib.suppress(RedisError, OSError):
        await redis.aclose()
    if sentinel is not None:
        with contextlib.suppress(RedisError, OSError):
            await sentinel.aclose()


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its SHA1, run by EVALSHA."""

    text: str
    sha: str

    @classmethod
    def of(cls, text: str) -> Script:
        return cls(text, hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest())


async def run_script(
    redis: Redis, script: Script, keys: Sequence[str | bytes], args: Sequence[Any]
) -> Any:
    """EVALSHA; on NOSCRIPT (a restarted Redis forgot it) load the script and run it again."""
    try:
        return await redis.evalsha(script.sha, len(keys), *keys, *args)
    except NoScriptError:
        await redis.script_load(script.text)
        return await redis.evalsha(script.sha, len(keys), *keys, *args)


def redact(url: str) -> str:
    """`scheme://host:port/db`: no user, password or query (a query may carry one too)."""
    if is_sentinel_url(url):
        try:
            return parse_sentinel_url(url).redacted()
        except ValueError:
            return "redis+sentinel://…"
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
