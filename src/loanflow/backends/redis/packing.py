"""Pack Redis commands in C (hiredis) on asyncio connections, as redis-py's sync client does.

redis-py's asyncio connections build each command's bytes in Python: for a
submission's append (an EVALSHA of eleven arguments) that was about a tenth of
the API process's CPU under cProfile. The sync client packs with hiredis, in
C, through redis-py's own `HiredisRespSerializer`; `pack_with_hiredis(pool)`
makes a pool's connections do the same. The bytes on the wire are the same.
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


_PACKED: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: PackedConnection,
    SSLConnection: PackedSSLConnection,
    UnixDomainSocketConnection: PackedUnixConnection,
}


def pack_with_hiredis(pool: ConnectionPool) -> ConnectionPool:
    """The pool, its connections (made from now on) packing with hiredis."""
    if HIREDIS_AVAILABLE:
        pool.connection_class = _PACKED.get(pool.connection_class, pool.connection_class)
    return pool
