"""Connections packing with hiredis put the same bytes on the wire as redis-py's own packer.

Every Redis user's own tests (broker, limiter, velocity, metrics) run over such connections.
"""

from __future__ import annotations

import pytest
from redis.asyncio import ConnectionPool
from redis.asyncio.connection import Connection

from loanflow.backends.redis.packing import pack_with_hiredis

COMMANDS = [
    ("EVALSHA", "9f1c", 3, b"idem:k", "stream", b"\x00\xffenvelope", 1764612345123456789,
     259200, 1.5, "é"),
    ("CONFIG GET", "appendfsync"),  # a command name redis-py splits in two
]


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0", "rediss://127.0.0.1:1/0",
                                 "unix:///tmp/none.sock"])
def test_every_kind_of_connection_packs_the_same_bytes(url):
    pool = ConnectionPool.from_url(url)
    python_packed = [b"".join(pool.make_connection().pack_command(*c)) for c in COMMANDS]
    packed_class = pack_with_hiredis(pool).connection_class

    assert packed_class is not Connection and packed_class.__name__.startswith("Packed")
    assert [b"".join(pool.make_connection().pack_command(*c)) for c in COMMANDS] == python_packed
    assert python_packed[1] == b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$11\r\nappendfsync\r\n"

