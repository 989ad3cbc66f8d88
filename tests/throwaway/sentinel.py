"""A throwaway replicated Redis: a primary, a replica and three Sentinels on free ports.

Each Redis is a RedisServer (tests/throwaway/redis.py: AOF with `appendfsync always`,
`noeviction`); the Sentinels are `redis-server CONF --sentinel` with low timeouts
(down after 1 s, failover timeout 3 s) so a failover takes a few seconds. Killing the
primary (SIGKILL) makes the Sentinels promote the replica; starting the old primary
again on its AOF makes it a replica of the new one (the Sentinels reconfigure it).

    group = SentinelGroup(tmp_path).start()
    group.url           # redis+sentinel://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/loanflow/0
    group.kill_primary(); group.wait_for_failover(old)
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from tests.throwaway import free_port
from tests.throwaway.redis import REDIS_SERVER, RedisServer

SERVICE = "loanflow"
SENTINELS = 3
QUORUM = 2
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000
#: Bounded waits: the Sentinels finding each other and the replica, and a failover.
DISCOVERY_TIMEOUT_S = 20.0
FAILOVER_WAIT_S = 30.0


class SentinelProcess:
    def __init__(self, directory: Path, primary_port: int) -> None:
        self.directory = directory
        self.port = free_port()
        directory.mkdir(parents=True, exist_ok=True)
        self.conf = directory / "sentinel.conf"
        self.conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndaemonize no\ndir {directory}\n"
            f"logfile {directory / 'sentinel.log'}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} {QUORUM}\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SentinelProcess:
        self.proc = subprocess.Popen([str(REDIS_SERVER), str(self.conf), "--sentinel"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2,
                           socket_connect_timeout=2)

    def master(self) -> dict[str, object] | None:
        try:
            with self.client() as c:
                state: dict[str, object] = c.sentinel_master(SERVICE)
                return state
        except (redis.RedisError, OSError):
            return None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class SentinelGroup:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        first = RedisServer(directory / "redis-a")
        second = RedisServer(directory / "redis-b",
                             extra_args=("--replicaof", "127.0.0.1", str(first.port)))
        for server in (first, second):
            server.directory.mkdir(parents=True, exist_ok=True)
        self.servers = [first, second]
        self.sentinels = [SentinelProcess(directory / f"sentinel-{i}", first.port)
                          for i in range(SENTINELS)]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> SentinelGroup:
        for server in self.servers:
            server.start()
        for sentinel in self.sentinels:
            sentinel.start()
        self.wait_until(lambda: all(
            (m := s.master()) is not None and m["num-other-sentinels"] == SENTINELS - 1
            and m["num-slaves"] >= 1 for s in self.sentinels), DISCOVERY_TIMEOUT_S,
            "the Sentinels to find each other and the replica")
        self.wait_until(lambda: self._replica_in_sync(self.servers[1]), DISCOVERY_TIMEOUT_S,
                        "the replica to sync")
        return self

    def primary(self) -> RedisServer:
        """The server the Sentinels name as primary now."""
        port = self._primary_port()
        return next(s for s in self.servers if s.port == port)

    def replica(self) -> RedisServer:
        port = self._primary_port()
        return next(s for s in self.servers if s.port != port)

    def _primary_port(self) -> int | None:
        for sentinel in self.sentinels:
            state = sentinel.master()
            if state is not None:
                return int(state["port"])  # type: ignore[call-overload]
        return None

    def wait_for_failover(self, old: RedisServer, timeout_s: float = FAILOVER_WAIT_S) -> float:
        """Seconds until every Sentinel names another primary that answers as one."""
        started = time.monotonic()

        def promoted() -> bool:
            states = [s.master() for s in self.sentinels]
            if any(st is None or int(st["port"]) == old.port  # type: ignore[call-overload]
                   for st in states):
                return False
            new = self.primary()
            try:
                with new.client(timeout_s=1) as c:
                    return c.info("replication")["role"] == "master"
            except (redis.RedisError, OSError):
                return False

        self.wait_until(promoted, timeout_s, "a failover")
        return time.monotonic() - started

    def wait_replica_of(self, server: RedisServer, timeout_s: float = FAILOVER_WAIT_S) -> None:
        """Until `server` (an old primary started again) is a synced replica."""
        self.wait_until(lambda: self._replica_in_sync(server), timeout_s,
                        f"redis on port {server.port} to become a synced replica")

    @staticmethod
    def _replica_in_sync(server: RedisServer) -> bool:
        try:
            with server.client(timeout_s=1) as c:
                info = c.info("replication")
        except (redis.RedisError, OSError):
            return False
        return bool(info["role"] == "slave" and info.get("master_link_status") == "up")

    @staticmethod
    def wait_until(check: object, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if check():  # type: ignore[operator]
                return
            time.sleep(0.05)
        raise RuntimeError(f"waited {timeout_s}s for {what}")

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.stop()
