"""Whether a Redis keeps what it acknowledges: checked on every new broker connection.

A 202 is a promise only on a Redis with AOF (`appendonly yes`, `appendfsync
always`, or `everysec` that "may lose the last second") and `maxmemory-policy
noeviction` (DESIGN "What accepted promises"). The broker's pool runs
`DurabilityGuard.on_connect` after each handshake, so the check runs at start
and again whenever a connection is re-established (a Redis restarted with other
settings). On a Redis that cannot keep the promise the connection is dropped
(`RedisNotDurable`): at start that refuses the start (`UnsafeRedis`), later
every call fails as BrokerUnavailable (503, never a 202) until a connection
finds Redis fixed. `allow_unsafe` (LOANFLOW_UNSAFE_REDIS=1, for development)
lets it through, and `in_force` says UNSAFE. Where CONFIG GET is disabled
(managed Redis) the documented settings are relied on, and `in_force` says so.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from loanflow.errors import UnsafeRedis

log = logging.getLogger(__name__)

#: The settings read; the names are Redis's own.
CHECKED = ("appendonly", "appendfsync", "maxmemory-policy")
#: What /readyz shows before the first connection.
NOT_CONNECTED = "redis (not connected yet)"
UNSAFE_FLAG = "LOANFLOW_UNSAFE_REDIS=1 (--unsafe-redis)"


class RedisNotDurable(RedisConnectionError):
    """A connection to a Redis that may lose acknowledged writes; it was dropped.

    A ConnectionError, so redis-py drops the connection and loanflow's Redis error
    handling turns the call into BrokerUnavailable."""


@dataclass(frozen=True, slots=True)
class Verdict:
    #: What a 202 rests on, as /readyz and the dashboard show it.
    in_force: str
    #: Each setting that breaks the promise, with its fix; empty when durable.
    problems: tuple[str, ...] = ()
    #: A warning to log once (everysec, CONFIG disabled); None when there is nothing to say.
    caveat: str | None = None


def judge(config: Mapping[str, str] | None) -> Verdict:
    """The verdict on Redis's settings; `config` None: CONFIG GET is disabled."""
    if config is None:
        return Verdict(
            "redis (CONFIG GET disabled: durability not checked, relying on"
            " appendonly yes and maxmemory-policy noeviction as documented)",
            caveat="redis refuses CONFIG GET (managed Redis?): cannot check its durability;"
            " relying on appendonly yes, appendfsync always and maxmemory-policy noeviction"
            " being set as documented",
        )
    aof, fsync = config.get("appendonly", "?"), config.get("appendfsync", "?")
    policy = config.get("maxmemory-policy", "?")
    problems = []
    if aof != "yes":
        problems.append(f"appendonly is {aof}: set `appendonly yes` and `appendfsync always`")
    elif fsync not in ("always", "everysec"):
        problems.append(f"appendfsync is {fsync}: set `appendfsync always`")
    if policy != "noeviction":
        problems.append(f"maxmemory-policy is {policy}: set `maxmemory-policy noeviction`")
    if problems:
        return Verdict(f"redis appendonly {aof}, appendfsync {fsync}, maxmemory-policy {policy}",
                       tuple(problems))
    if fsync == "everysec":
        return Verdict("redis aof everysec (may lose the last second)",
                       caveat="redis appendfsync is everysec: a crash of the Redis host may"
                       " lose the last second of accepted applications; `appendfsync always`"
                       " loses none")
    return Verdict("redis aof always")


def refusal(where: str, verdict: Verdict) -> str:
    """The one line that names each setting and its fix."""
    return f"{_danger(where, verdict)}, or set {UNSAFE_FLAG} for development"


def _danger(where: str, verdict: Verdict) -> str:
    return (f"redis at {where} may lose accepted applications: {'; '.join(verdict.problems)}"
            " (in redis.conf, or CONFIG SET and CONFIG REWRITE)")


class DurabilityGuard:
    """Judges each new connection of one broker's pool; remembers what is in force."""

    def __init__(self, where: str, *, allow_unsafe: bool) -> None:
        self._where = where  # the redacted URL: no password
        self._allow_unsafe = allow_unsafe
        self.in_force = NOT_CONNECTED

    async def on_connect(self, conn: AbstractConnection) -> None:
        """The pool's `redis_connect_func`: redis-py's own handshake, then the check."""
        await conn.on_connect()
        verdict = judge(await _config(conn))
        if not verdict.problems:
            self._settle(verdict.in_force, verdict.caveat)
        elif self._allow_unsafe:
            self._settle(f"UNSAFE (LOANFLOW_UNSAFE_REDIS=1): {verdict.in_force}: an accepted"
                         " application may be lost",
                         f"UNSAFE, allowed by {UNSAFE_FLAG}: {_danger(self._where, verdict)}")
        else:
            line = refusal(self._where, verdict)
            # At start the refusal is the start's one line; later, it is news for the log.
            running = self.in_force != NOT_CONNECTED
            self._settle(f"refused: {verdict.in_force}", line if running else None)
            raise RedisNotDurable(line)

    def _settle(self, in_force: str, caveat: str | None) -> None:
        # Once per change, not per connection: a pool makes many.
        if in_force != self.in_force and caveat is not None:
            log.warning("%s", caveat)
        self.in_force = in_force


@contextlib.contextmanager
def refused_unless_durable() -> Iterator[None]:
    """At start: a Redis that may lose what it acknowledges stops the start."""
    try:
        yield
    except RedisNotDurable as exc:
        raise UnsafeRedis(str(exc)) from exc


async def _config(conn: AbstractConnection) -> dict[str, str] | None:
    try:
        await conn.send_command("CONFIG", "GET", *CHECKED)
        raw: Any = await conn.read_response()
    except ResponseError:
        return None  # CONFIG is renamed or refused on many managed Redis services
    if isinstance(raw, dict):  # RESP3
        pairs = list(raw.items())
    else:
        pairs = list(zip(raw[::2], raw[1::2], strict=True))
    return {_text(k): _text(v) for k, v in pairs}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
