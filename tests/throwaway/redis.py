"""A throwaway `redis-server` on a free loopback port, in its own directory.

Configured as production must be (DESIGN "What accepted promises"): AOF on,
`appendfsync always`, `noeviction`, no RDB snapshots. It can be stopped,
killed (SIGKILL, as in a crash), started again on the same directory and
port (the AOF is replayed), and frozen/thawed (SIGSTOP/SIGCONT) to play a
Redis that accepts connections but never answers. The benchmarks use it too,
without a directory (a temporary one, deleted by `remove()`).

    redis_server = redis_server_fixture()                  # module scope, in a test module
    small_redis = redis_server_fixture(scope="function", extra_args=("--maxmemory", "2mb"))
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.throwaway import free_port

REDIS_SERVER = Path("/usr/bin/redis-server")

#: The durability settings loanflow documents for production.
DURABLE_ARGS = (
    "--appendonly", "yes",
    "--appendfsync", "always",
    "--maxmemory-policy", "noeviction",
    "--save", "",
)

#: Bounded wait for a started server to answer PING (AOF replay included).
START_TIMEOUT_S = 10.0
#: Bounded wait for an AOF rewrite (`compact_aof`) and for FLUSHALL of a benchmark's data.
REWRITE_TIMEOUT_S = 30.0
FLUSH_TIMEOUT_S = 10.0


class RedisServer:
    """One redis-server process over `directory`; `url` stays the same across restarts."""

    def __init__(
        self,
        directory: Path | None = None,
        *,
        extra_args: Sequence[str] = (),
        password: str | None = None,
        port: int | None = None,
        bind: Sequence[str] = (),
    ) -> None:
        self.directory = directory or Path(tempfile.mkdtemp(prefix="loanflow-redis-"))
        self.extra_args = tuple(extra_args)
        self.password = password
        self.port = port or free_port()
        #: Addresses it listens on besides loopback (say, a network namespace's gateway).
        self.bind = ("127.0.0.1", *bind)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def start(self) -> RedisServer:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError(f"expected a stopped redis-server, got pid {self.proc.pid} running")
        args = [
            str(REDIS_SERVER), "--port", str(self.port), "--bind", *self.bind,
            "--dir", str(self.directory), "--logfile", str(self.log_path),
            "--daemonize", "no", *DURABLE_ARGS, *self.extra_args,
        ]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self._log_tail()}")
            if self._answers_ping():
                return
            time.sleep(0.01)
        raise RuntimeError(f"redis-server not ready after {START_TIMEOUT_S}s: {self._log_tail()}")

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                if self.password:
                    s.sendall(f"AUTH {self.password}\r\n".encode())
                    s.recv(64)
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")  # "-LOADING" while replaying the AOF
        except OSError:
            return False

    def _log_tail(self) -> str:
        return self.log_path.read_text()[-2000:] if self.log_path.exists() else "(no log)"

    def stop(self) -> None:
        """SIGTERM: Redis flushes the AOF and exits; SIGKILL if it does not within 10 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.thaw()  # a frozen process would never handle SIGTERM
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts connections, nothing is answered."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def remove(self) -> None:
        """Stop and delete the directory."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def client(self, *, timeout_s: float = 5.0) -> redis.Redis:
        """A synchronous client for setting up and inspecting; use it in a `with` block."""
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password,
                           socket_timeout=timeout_s)

    def flushall(self) -> None:
        with self.client(timeout_s=FLUSH_TIMEOUT_S) as c:
            c.flushall()

    def compact_aof(self) -> None:
        """Rewrite the append-only file now and wait for it: after FLUSHALL the old AOF
        still holds every earlier run's writes, and the rewrite Redis would otherwise
        start on its own (at twice the last size) would land inside a later run."""
        with self.client(timeout_s=FLUSH_TIMEOUT_S) as c:
            # "already in progress" is refused with an error; that rewrite will do.
            with contextlib.suppress(redis.ResponseError):
                c.bgrewriteaof()
            deadline = time.monotonic() + REWRITE_TIMEOUT_S
            while time.monotonic() < deadline:
                info = c.info("persistence")
                if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
                    return
                time.sleep(0.05)
        raise RuntimeError(f"redis AOF rewrite did not finish in {REWRITE_TIMEOUT_S}s")


def redis_server_fixture(
    *, scope: Any = "module", extra_args: Sequence[str] = (), password: str | None = None
) -> Callable[..., Iterator[RedisServer]]:
    """A pytest fixture starting one RedisServer for its scope (assign it to a module name)."""

    @pytest.fixture(scope=scope)
    def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
        srv = RedisServer(
            tmp_path_factory.mktemp("redis"), extra_args=extra_args, password=password
        ).start()
        try:
            yield srv
        finally:
            srv.stop()

    return server
