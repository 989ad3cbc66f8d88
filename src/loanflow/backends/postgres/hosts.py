"""A primary and its standbys in one URL, and finding the primary among them.

    postgresql://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]…]/DATABASE[?target_session_attrs=…]

The store writes, so with several hosts it wants the primary: `target_session_attrs`
is `read-write` when not given, and only `read-write` or `primary` are accepted.

Each new connection of a multi-host URL tries the hosts one at a time, starting with
the one that last served, each within its share of the connect timeout. asyncpg
gives the timeout to the whole list, so a first host that never answers (a lost
machine drops the SYNs; a frozen server accepts and says nothing) would use it all,
and the new primary behind it would never be tried.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

FORM = "postgresql://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]…]/DATABASE"
DEFAULT_PORT = 5432
#: What finds the primary; what asyncpg accepts besides could land on a standby.
PRIMARY_ATTRS = ("read-write", "primary")
#: A single host may also say `any`: it is the primary or nothing.
SINGLE_HOST_ATTRS = ("any", *PRIMARY_ATTRS)
#: A host gets at least this long to connect, however many hosts share the timeout.
MIN_HOST_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class PostgresTarget:
    hosts: tuple[tuple[str, int], ...]
    #: None: not given, and a single host (asyncpg's default, `any`).
    target_session_attrs: str | None


def parse(url: str) -> PostgresTarget:
    """The hosts and target attribute of a postgresql:// URL; ValueError ("expected …,
    got …") naming what is wrong, never the password. A libpq `host=` parameter or a Unix
    socket path is left to asyncpg (one target, as given)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:  # "Invalid IPv6 URL"
        raise ValueError(f"expected {FORM}: {exc}") from None
    query: dict[str, list[str]] = {}
    if parts.query:
        try:
            query = urllib.parse.parse_qs(parts.query, strict_parsing=True)
        except ValueError:
            raise ValueError("expected the parameters as ?NAME=VALUE[&NAME=VALUE…]") from None
    hostspec = parts.netloc.rpartition("@")[2]
    hosts = tuple(_address(part) for part in hostspec.split(",")) if hostspec else ()
    attrs = query.get("target_session_attrs", [None])[-1]
    if len(hosts) > 1:
        if attrs not in (None, *PRIMARY_ATTRS):
            raise ValueError(f"expected target_session_attrs=read-write or primary with several"
                             f" hosts (the store writes to the primary), got {attrs!r}")
        attrs = attrs or "read-write"
    elif attrs not in (None, *SINGLE_HOST_ATTRS):
        raise ValueError(f"expected target_session_attrs=read-write, primary or any (the store"
                         f" writes to the primary), got {attrs!r}")
    return PostgresTarget(hosts, attrs)


def _address(part: str) -> tuple[str, int]:
    if part.startswith("["):  # an IPv6 literal
        host, bracket, rest = part[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"expected {FORM}: an IPv6 host as [ADDRESS]:PORT, got {part!r}")
        port = rest[1:] if rest else ""
    else:
        host, _, port = part.partition(":")
    if not host:
        raise ValueError(f"expected {FORM}: each host as HOST[:PORT], got {part!r}")
    if not port:
        return urllib.parse.unquote(host), DEFAULT_PORT
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ValueError(f"expected {FORM}: a port from 1 to 65535, got {port!r}")
    return urllib.parse.unquote(host), int(port)


class PrimaryFirst:
    """The pool's `connect`: the hosts in turn, the last one that served first."""

    def __init__(self, target: PostgresTarget) -> None:
        if len(target.hosts) < 2:
            raise ValueError(f"expected several hosts, got {len(target.hosts)}")
        self._hosts: Sequence[tuple[str, int]] = target.hosts
        self._attrs = target.target_session_attrs
        #: Index of the host to try first: the last that served, or the one after a
        #: host that failed (so an attempt cut short still moves the next one on).
        self._first = 0

    async def __call__(self, dsn: str, *, timeout: float, **options: Any) -> Any:
        host_timeout_s = max(MIN_HOST_TIMEOUT_S, timeout / len(self._hosts))
        error: BaseException | None = None
        first = self._first
        for step in range(len(self._hosts)):
            index = (first + step) % len(self._hosts)
            host, port = self._hosts[index]
            try:
                conn = await asyncpg.connect(
                    dsn, host=host, port=port, timeout=host_timeout_s,
                    target_session_attrs=self._attrs, **options)
            except asyncpg.ClientConfigurationError:
                raise  # the same on every host
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
                    asyncpg.InternalClientError) as exc:
                # Down, not answering, a standby (TargetServerAttributeNotMatched), or
                # starting or shutting down (CannotConnectNowError): the next host.
                error = exc
                if index == self._first:
                    self._first = (index + 1) % len(self._hosts)
                continue
            self._first = index
            return conn
        assert error is not None
        raise error
