"""The services under test, each in its own process group on a free loopback port.

`loanflow_service` starts `loanflow serve` over fresh backends (a new data
directory, or a new PostgreSQL database and a flushed Redis) and takes the
API key its first start prints. `naive_service` starts the baseline of
benchmarks/naive/ under uvicorn. Rate limiting is off (0): the benchmark
measures capacity, not the per-key quota.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx
from tests.throwaway import free_port
from tests.throwaway.postgres import PostgresServer
from tests.throwaway.redis import RedisServer

from benchmarks.harness.procs import tree
from loanflow.pii import new_key_text
from loanflow.settings import AUTO_PROCESSORS

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
_KEY_LINE = re.compile(r"API key \(scopes [^)]*\): (lf_\S+)")
#: Durable like production, sized for a 2-core, 24 GiB machine running everything.
POSTGRES_SETTINGS = {
    "fsync": "on",
    "synchronous_commit": "on",
    "shared_buffers": "256MB",
    "max_connections": "200",
    "listen_addresses": "127.0.0.1",
    "log_min_messages": "warning",
}
#: Every database `Production.create_database` makes starts so; `empty` drops those.
DATABASE_PREFIX = "bench_"


@dataclasses.dataclass
class Service:
    """One started service: where it listens, its key, its processes."""

    name: str
    url: str
    key: str = dataclasses.field(repr=False)
    proc: subprocess.Popen[bytes]
    log_path: Path
    #: Processes it depends on (Redis, PostgreSQL), whose CPU counts as its own.
    backend_pids: Callable[[], list[int]] = list

    def pids(self) -> list[int]:
        return tree(self.proc.pid) if self.proc.poll() is None else []

    def watched_pids(self) -> list[int]:
        """Its own processes and its backends': what a load run's CPU is charged to."""
        return [*self.pids(), *self.backend_pids()]

    def stop(self) -> None:
        """SIGTERM to the group (graceful), SIGKILL to the group if it does not end."""
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@dataclasses.dataclass
class Production:
    """The throwaway Redis and PostgreSQL of a run; each service gets them fresh."""

    redis: RedisServer
    postgres: PostgresServer

    @classmethod
    def start(cls) -> Production:
        """A new Redis (AOF, `appendfsync always`) and PostgreSQL (fsync on); `remove()` ends
        both and deletes their data."""
        redis = RedisServer().start()
        try:
            return cls(redis, PostgresServer(settings=POSTGRES_SETTINGS).start())
        except BaseException:
            redis.remove()
            raise

    def remove(self) -> None:
        self.redis.remove()
        self.postgres.remove()

    def create_database(self) -> str:
        """A new empty database; its URL."""
        name = f"{DATABASE_PREFIX}{secrets.token_hex(4)}"
        asyncio.run(_execute(self.postgres.url, f"CREATE DATABASE {name}"))
        return f"postgresql://postgres@127.0.0.1:{self.postgres.port}/{name}"

    def pids(self) -> list[int]:
        roots = [p.proc.pid for p in (self.redis, self.postgres) if p.proc is not None]
        return [pid for root in roots for pid in tree(root)]

    def empty(self) -> None:
        """As fresh as new servers for the next service: no earlier run's data, and none
        of the background work it would cause (AOF rewrite, autovacuum, checkpoint)."""
        self.redis.flushall()
        self.redis.compact_aof()
        asyncio.run(_drop_databases(self.postgres.url))


async def _drop_databases(admin_url: str) -> None:
    """Drop every database `create_database` made, then checkpoint: autovacuum working
    through an earlier run's tables, or a checkpoint writing them out, would land inside
    a later run."""
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        for row in await conn.fetch("SELECT datname FROM pg_database"):
            if row["datname"].startswith(DATABASE_PREFIX):
                await conn.execute(f'DROP DATABASE "{row["datname"]}" WITH (FORCE)')
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _spawn(name: str, argv: list[str], env: dict[str, str], log_path: Path
           ) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {READY_TIMEOUT_S:.0f}s; see {log_path}")


def loanflow_service(
    work_dir: Path, *, production: Production | None, api_workers: int = 1,
    processors: int = AUTO_PROCESSORS, rate_limit_per_s: float = 0,
) -> Service:
    """`loanflow serve` over fresh backends; ready when `/readyz` answers 200."""
    data_dir = Path(tempfile.mkdtemp(prefix="serve-", dir=work_dir))
    port = free_port()
    env = {**os.environ, "LOANFLOW_DATA_DIR": str(data_dir), "LOANFLOW_PORT": str(port),
           "LOANFLOW_API_WORKERS": str(api_workers), "LOANFLOW_PROCESSORS": str(processors),
           "LOANFLOW_RATE_LIMIT_PER_S": str(rate_limit_per_s),
           "LOANFLOW_RATE_LIMIT_BURST": str(max(10_000, int(rate_limit_per_s))),
           "LOANFLOW_LOG_LEVEL": "warning",
           "LOANFLOW_BROKER_URL": "", "LOANFLOW_STORE_URL": "", "LOANFLOW_PII_KEY": ""}
    mode = "embedded"
    if production is not None:
        mode = "production"
        production.empty()
        env.update(LOANFLOW_BROKER_URL=production.redis.url,
                   LOANFLOW_STORE_URL=production.create_database(),
                   LOANFLOW_PII_KEY=new_key_text())
    log_path = data_dir / "serve.log"
    proc = _spawn(mode, [sys.executable, "-m", "loanflow", "serve"], env, log_path)
    url = f"http://127.0.0.1:{port}"
    _wait_ready(proc, url + "/readyz", log_path)
    found = _KEY_LINE.search(log_path.read_text())
    if found is None:
        proc.terminate()
        raise RuntimeError(f"serve printed no API key; see {log_path}")
    return Service(f"loanflow {mode}", url, found.group(1), proc, log_path,
                   production.pids if production is not None else list)


def naive_service(
    app_dir: Path, work_dir: Path, *, production: Production, workers: int = 2,
) -> Service:
    """The naive baseline (benchmarks/naive/app.py) under uvicorn with `workers` processes."""
    port, token = free_port(), "lf_naive_" + new_key_text()[:16]
    production.empty()
    env = {**os.environ, "NAIVE_DATABASE_URL": production.create_database(),
           "NAIVE_REDIS_URL": production.redis.url, "NAIVE_TOKEN": token}
    log_path = Path(tempfile.mkdtemp(prefix="naive-", dir=work_dir)) / "naive.log"
    proc = _spawn("naive", [
        sys.executable, "-m", "uvicorn", "--app-dir", str(app_dir), "app:app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
        # As loanflow's own: uvicorn's 5 s reset connections between the load's bursts.
        "--timeout-keep-alive", "65",
    ], env, log_path)
    url = f"http://127.0.0.1:{port}"
    _wait_ready(proc, url + "/healthz", log_path)
    return Service("naive baseline", url, token, proc, log_path, production.pids)
