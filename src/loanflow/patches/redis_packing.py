"""Pack Redis commands in C (hiredis) on asyncio connections, as redis-py's sync client does.

Relies on redis-py 8.1.0: asyncio connections send what `pack_command(*args)`
returns, a pool makes its connections from `pool.connection_class` (one of
`Connection`, `SSLConnection`, `UnixDomainSocketConnection`, and Sentinel's
`SentinelManagedConnection`, `SentinelManagedSSLConnection`), and
`redis.connection.HiredisRespSerializer.pack` packs as they do; and on hiredis
3.5.0 being installed (`HIREDIS_AVAILABLE`). tests/patches/test_redis_packing.py
checks each.

Why: redis-py's asyncio connections build each command's bytes in Python, a
visible share of the API process's CPU on every append (docs/benchmarks.md);
`pack_with_hiredis(pool)` makes a pool's connections pack in C. The bytes on the
wire are the same.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.sentinel import SentinelManagedConnection, SentinelManagedSSLConnection
from redis.connection import HiredisRespSerializer
from redis.utils import HIREDIS_AVAILABLE

_PACKER = HiredisRespSerializer()


class _HiredisPacking:
    def pack_command(self, *args: Any) -> list[bytes]:
        packed: list[bytes] = _PACKER.pack(*args)
        return packed


class PackedConnection(_HiredisPacking, Connection):
    pass


class PackedSSLConnection(_HiredisPacking, SSLConnection):
    pass


class PackedUnixConnection(_HiredisPacking, UnixDomainSocketConnection):
    pass


class PackedSentinelConnection(_HiredisPacking, SentinelManagedConnection):
    pass


class PackedSentinelSSLConnection(_HiredisPacking, SentinelManagedSSLConnection):
    pass


_PACKED: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: PackedConnection,
    SSLConnection: PackedSSLConnection,
    UnixDomainSocketConnection: PackedUnixConnection,
    SentinelManagedConnection: PackedSentinelConnection,
    SentinelManagedSSLConnection: PackedSentinelSSLConnection,
}


def pack_with_hiredis(pool: ConnectionPool) -> ConnectionPool:
    """The pool, its connections (made from now on) packing with hiredis."""
    if HIREDIS_AVAILABLE:
        pool.connection_class = _PACKED.get(pool.connection_class, pool.connection_class)
    return pool
