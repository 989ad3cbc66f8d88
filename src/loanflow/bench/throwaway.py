"""Throwaway Redis and PostgreSQL servers for the benchmark, on free loopback ports.

Started from the installed binaries in a temporary directory, configured as
production must be (Redis: AOF, `appendfsync always`, `noeviction`; PostgreSQL:
fsync on), and removed afterwards, so the machine's shared servers on 5432 and
6379 are never touched. Adapted from tests/throwaway/ (which adds crash and
freeze controls the benchmark does not need). PostgreSQL refuses to run as
root: as root, initdb and the server run as the `postgres` OS user.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

REDIS_SERVER = Path("/usr/bin/redis-server")
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
POSTGRES_OS_USER = "postgres"
#: The durability settings loanflow documents for production (README, DESIGN).
REDIS_DURABLE_ARGS = ("--appendonly", "yes", "--appendfsync", "always",
                      "--maxmemory-policy", "noeviction", "--save", "")
#: Durable like production, sized for a 2-core, 24 GiB machine running everything.
POSTGRES_SETTINGS = {
    "fsync": "on",
    "synchronous_commit": "on",
    "shared_buffers": "256MB",
    "max_connections": "200",
    "listen_addresses": "127.0.0.1",
    "log_min_messages": "warning",
}
START_TIMEOUT_S = 30.0
#: Every database `create_database` makes starts so; `drop_databases` drops those.
DATABASE_PREFIX = "bench_"
STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class RedisServer:
    """redis-server over its own directory; `stop()` ends it, `remove()` deletes the data."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="loanflow-bench-redis-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [str(REDIS_SERVER), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log"),
             "--daemonize", "no", *REDIS_DURABLE_ARGS],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def flushall(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"FLUSHALL\r\n")
            if not s.recv(16).startswith(b"+OK"):
                raise RuntimeError("FLUSHALL refused")

    def compact_aof(self) -> None:
        """Rewrite the append-only file now and wait for it: after FLUSHALL the old AOF
        still holds every earlier run's writes, and the rewrite Redis would otherwise
        start on its own (at twice the last size) would land inside a later run."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"BGREWRITEAOF\r\n")
            s.recv(256)  # "+Background append only file rewriting started" or already on
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline:
                s.sendall(b"INFO persistence\r\n")
                info = s.recv(65536)
                if b"aof_rewrite_in_progress:0" in info and b"aof_rewrite_scheduled:0" in info:
                    return
                time.sleep(0.05)
        raise RuntimeError("redis AOF rewrite did not finish")

    def remove(self) -> None:
        if self.proc is not None:
            _stop(self.proc, signal.SIGTERM)
        shutil.rmtree(self.directory, ignore_errors=True)


class PostgresServer:
    """A postmaster over its own data directory, with fsync on, trust auth on loopback."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="loanflow-bench-pg-"))
        self.data_dir = self.directory / "data"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._as_user: dict[str, Any] = {}
        if os.geteuid() == 0:
            entry = pwd.getpwnam(POSTGRES_OS_USER)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
            self._as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> PostgresServer:
        subprocess.run(
            [str(POSTGRES_BIN / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            check=True, capture_output=True, timeout=120, cwd=self.directory, **self._as_user)
        settings = [a for k, v in POSTGRES_SETTINGS.items() for a in ("-c", f"{k}={v}")]
        with open(self.directory / "postgres.log", "ab") as log:
            self.proc = subprocess.Popen(
                [str(POSTGRES_BIN / "postgres"), "-D", str(self.data_dir), "-p",
                 str(self.port), "-k", str(self.directory), *settings],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.directory,
                start_new_session=True, **self._as_user)
        # The postmaster writes "ready" as the last line of postmaster.pid once it accepts.
        pid_file, deadline = self.data_dir / "postmaster.pid", time.monotonic() + START_TIMEOUT_S
        while True:
            with contextlib.suppress(OSError):
                lines = pid_file.read_text().splitlines()
                if lines and lines[-1].strip() == "ready":
                    return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not start: see {self.directory}/postgres.log")
            time.sleep(0.05)

    def drop_databases(self) -> None:
        """Drop every database an earlier service used (`create_database`'s), then
        checkpoint: autovacuum working through an earlier run's tables, or a checkpoint
        writing them out, would land inside a later run."""
        async def drop() -> None:
            conn = await asyncpg.connect(self.admin_url, timeout=10)
            try:
                for row in await conn.fetch("SELECT datname FROM pg_database"):
                    if row["datname"].startswith(DATABASE_PREFIX):
                        await conn.execute(f'DROP DATABASE "{row["datname"]}" WITH (FORCE)')
                await conn.execute("CHECKPOINT")
            finally:
                await conn.close()

        asyncio.run(drop())

    def create_database(self) -> str:
        """A new empty database; its URL."""
        name = f"{DATABASE_PREFIX}{secrets.token_hex(4)}"
        asyncio.run(_execute(self.admin_url, f"CREATE DATABASE {name}"))
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def remove(self) -> None:
        if self.proc is not None:
            _stop(self.proc, signal.SIGINT)  # fast shutdown: clients cut off
        shutil.rmtree(self.directory, ignore_errors=True)


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
