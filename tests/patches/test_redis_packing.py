"""Connections packing with hiredis (patches/redis_packing.py) put the same bytes on the
wire as redis-py's own packer; the first tests fail when redis-py or hiredis change what
the patch relies on.

Every Redis user's own tests (broker, limiter, velocity, metrics) run over such connections.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
from typing import Any

import pytest
from redis.asyncio import ConnectionPool
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.sentinel import (
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)
from redis.connection import HiredisRespSerializer
from redis.utils import HIREDIS_AVAILABLE

from loanflow.patches.redis_packing import PackedConnection, pack_with_hiredis

#: The versions whose internals the patch was read against; add one only after reading it.
CHECKED = {"redis": ("8.1.0",), "hiredis": ("3.5.0",)}
URLS = {"redis://127.0.0.1:1/0": Connection, "rediss://127.0.0.1:1/0": SSLConnection,
        "unix:///tmp/none.sock": UnixDomainSocketConnection}
COMMANDS = [
    ("EVALSHA", "9f1c", 3, b"idem:k", "stream", b"\x00\xffenvelope", 1764612345123456789,
     259200, 1.5, "é"),
    ("CONFIG GET", "appendfsync"),  # a command name redis-py splits in two
]
#: A value redis-py's Python packer sends as a chunk of its own; hiredis packs one buffer.
BIG = ("SET", "k", b"v" * 10_000)


@pytest.mark.parametrize("library", sorted(CHECKED))
def test_the_installed_library_is_a_version_the_patch_was_checked_against(library: str) -> None:
    assert importlib.metadata.version(library) in CHECKED[library]


def test_redis_py_finds_hiredis_else_the_patch_would_silently_do_nothing() -> None:
    assert HIREDIS_AVAILABLE


def test_both_packers_still_take_a_commands_arguments_alone() -> None:
    for pack in (AbstractConnection.pack_command, HiredisRespSerializer.pack):
        assert list(inspect.signature(pack).parameters) == ["self", "args"]


@pytest.mark.parametrize("url", sorted(URLS))
def test_a_pool_still_makes_its_connections_from_the_classes_the_patch_knows(url: str) -> None:
    assert ConnectionPool.from_url(url).connection_class is URLS[url]


@pytest.mark.parametrize(("ssl", "made"), [(False, SentinelManagedConnection),
                                            (True, SentinelManagedSSLConnection)])
def test_a_sentinel_pool_still_makes_connections_the_patch_knows_and_packs_them(
    ssl: bool, made: type[AbstractConnection]
) -> None:
    pool = SentinelConnectionPool("svc", None, ssl=ssl)
    assert pool.connection_class is made

    packed = pack_with_hiredis(pool).connection_class

    assert issubclass(packed, made) and packed is not made


def test_sending_a_command_still_sends_what_pack_command_returns() -> None:
    class Recording(PackedConnection):
        sent: list[Any]

        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            self.sent.append(command)

    connection = Recording()
    connection.sent = []

    asyncio.run(connection.send_command(*BIG))

    assert connection.sent == [HiredisRespSerializer().pack(*BIG)]
    assert len(connection.sent[0]) == 1 < len(Connection().pack_command(*BIG))


@pytest.mark.parametrize("url", sorted(URLS))
def test_every_kind_of_connection_packs_the_same_bytes(url: str) -> None:
    pool = ConnectionPool.from_url(url)
    python_packed = [b"".join(pool.make_connection().pack_command(*c)) for c in COMMANDS]
    packed_class = pack_with_hiredis(pool).connection_class

    assert packed_class is not URLS[url] and issubclass(packed_class, URLS[url])
    assert packed_class.__name__.startswith("Packed")
    assert [b"".join(pool.make_connection().pack_command(*c)) for c in COMMANDS] == python_packed
    assert python_packed[1] == b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$11\r\nappendfsync\r\n"
