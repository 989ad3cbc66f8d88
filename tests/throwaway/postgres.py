"""PostgreSQL for tests: a fresh database on the shared server, or a throwaway server.

Plain contract tests never stop the server, so they take a uniquely named
database on the machine's shared PostgreSQL (much faster than initdb) and drop
it afterwards. Fault tests need a server of their own: `PostgresServer` runs
PostgreSQL 15 from its own data directory on a free loopback port, with fsync
on and trust auth; it can be stopped, killed (SIGKILL, as in a crash), started
again on the same data directory and port (crash recovery runs), and
frozen/thawed (SIGSTOP/SIGCONT) to play a server that accepts connections but
never answers.

    database_url = shared_database_fixture()            # module scope, in a test module
    postgres_server = postgres_server_fixture()         # a server of the module's own

initdb and postgres refuse to run as root, and the tests do run as root: then
the server runs as the `postgres` OS user (Popen's `user=`, no wrapper process,
so the Popen pid is the postmaster's), in a directory under /tmp it owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from tests.throwaway import free_port

BIN = Path("/usr/lib/postgresql/15/bin")
OS_USER = "postgres"
#: The machine's shared server (trust auth); override to point the tests elsewhere.
SHARED_ADMIN_URL = os.environ.get(
    "LOANFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
#: Bounded waits: start (crash recovery included), stop, and one admin statement.
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
ADMIN_TIMEOUT_S = 10.0

#: Small and quiet: many of these may run at once on a test machine.
SERVER_SETTINGS = {
    "fsync": "on",
    "shared_buffers": "32MB",
    "max_connections": "50",
    "listen_addresses": "127.0.0.1",
    "log_min_messages": "warning",
}


class PostgresServer:
    """One postmaster over its own data directory; `url` stays the same across restarts."""

    def __init__(
        self, *, port: int | None = None, settings: Mapping[str, str] = SERVER_SETTINGS,
        trusted_networks: Sequence[str] = (),
    ) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="loanflow-pg-"))
        self.data_dir = self.directory / "data"
        self.port = port or free_port()
        self.settings = dict(settings)
        self.proc: subprocess.Popen[bytes] | None = None
        self._as_user: dict[str, Any] = {}
        if os.geteuid() == 0:
            entry = pwd.getpwnam(OS_USER)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
            self._as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        self._init_db()
        if trusted_networks:
            # initdb trusts loopback only: clients from these networks (CIDR) too.
            with open(self.data_dir / "pg_hba.conf", "a") as hba:
                hba.writelines(f"host all all {net} trust\n" for net in trusted_networks)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def log_path(self) -> Path:
        return self.directory / "postgres.log"

    def _init_db(self) -> None:
        # --no-sync: only initdb's own final flush; the server below runs with fsync on.
        subprocess.run(
            [str(BIN / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            check=True, capture_output=True, timeout=60, cwd=self.directory, **self._as_user,
        )

    def start(self) -> PostgresServer:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError(f"expected a stopped postgres, got pid {self.proc.pid} running")
        settings = [arg for k, v in self.settings.items() for arg in ("-c", f"{k}={v}")]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                 "-k", str(self.directory), *settings],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.directory,
                start_new_session=True, **self._as_user,
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        # The postmaster writes "ready" as the last line of postmaster.pid once
        # it accepts connections (after crash recovery, if any).
        pid_file = self.data_dir / "postmaster.pid"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {self._log_tail()}")
            with contextlib.suppress(OSError):
                lines = pid_file.read_text().splitlines()
                if lines and lines[0] == str(self.proc.pid) and lines[-1].strip() == "ready":
                    return
            time.sleep(0.02)
        raise RuntimeError(f"postgres not ready after {START_TIMEOUT_S}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        return self.log_path.read_text()[-2000:] if self.log_path.exists() else "(no log)"

    def _children(self) -> list[int]:
        assert self.proc is not None
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    # Field 4 of /proc/PID/stat is the parent pid; the name in
                    # field 2 may hold spaces, so split after its closing ")".
                    stat = (entry / "stat").read_text()
                    if int(stat.rpartition(")")[2].split()[1]) == self.proc.pid:
                        found.append(int(entry.name))
        return found

    def _signal(self, pids: list[int], sig: signal.Signals) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def stop(self) -> None:
        """Fast shutdown (SIGINT): clients are cut off, a checkpoint is written."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.thaw()  # a stopped process would never handle the signal
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL of the postmaster and its children: a crash; start() then recovers."""
        assert self.proc is not None
        # Children call setsid(), so they are not in the postmaster's process group.
        # They are killed too: a survivor would hold the shared memory and block start().
        children = self._children()
        self._signal([self.proc.pid, *children], signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT_S)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while any(_alive(pid) for pid in children):
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres children {children} outlived SIGKILL")
            time.sleep(0.01)

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts connections (kernel backlog), nothing answers."""
        assert self.proc is not None
        # The postmaster first, so it cannot fork a child we would miss.
        self.proc.send_signal(signal.SIGSTOP)
        self._signal(self._children(), signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self._signal(self._children(), signal.SIGCONT)
        self.proc.send_signal(signal.SIGCONT)

    def remove(self) -> None:
        """Stop and delete the data directory."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new uniquely named database on the server of `admin_url`; dropped afterwards."""
    name = f"loanflow_test_{secrets.token_hex(6)}"
    execute_sql(admin_url, f"CREATE DATABASE {name}")
    try:
        yield _with_database(admin_url, name)
    finally:
        # FORCE: a test that failed half-way may have left a connection open.
        execute_sql(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def execute_sql(url: str, sql: str) -> None:
    """Run `sql` (one or more statements) on `url`, from synchronous test code."""
    asyncio.run(_admin(url, sql))


def shared_server_available(admin_url: str = SHARED_ADMIN_URL) -> bool:
    try:
        asyncio.run(_admin(admin_url, "SELECT 1", timeout_s=2.0))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    return True


def shared_database_fixture(*, scope: Any = "module") -> Callable[..., Iterator[str]]:
    """A fixture yielding the URL of a fresh database for its scope.

    On the shared server at 127.0.0.1:5432; if that does not answer, on a
    throwaway server started for the purpose.
    """

    @pytest.fixture(scope=scope)
    def database_url() -> Iterator[str]:
        if shared_server_available():
            with fresh_database(SHARED_ADMIN_URL) as url:
                yield url
            return
        server = PostgresServer().start()
        try:
            with fresh_database(server.url) as url:
                yield url
        finally:
            server.remove()

    return database_url


def postgres_server_fixture(*, scope: Any = "module") -> Callable[..., Iterator[PostgresServer]]:
    """A fixture starting one PostgresServer for its scope (assign it to a module name)."""

    @pytest.fixture(scope=scope)
    def server() -> Iterator[PostgresServer]:
        srv = PostgresServer()
        try:
            yield srv.start()
        finally:
            srv.remove()

    return server


def _alive(pid: int) -> bool:
    # A killed orphan stays a zombie until init reaps it, which in a container
    # may take a while; a zombie holds no shared memory, so it counts as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def admin_url(url: str) -> str:
    """The URL of the `postgres` database on the same server as `url`."""
    return _with_database(url, "postgres")


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def _admin(url: str, sql: str, *, timeout_s: float = ADMIN_TIMEOUT_S) -> None:
    conn = await asyncpg.connect(url, timeout=timeout_s, command_timeout=timeout_s)
    try:
        await conn.execute(sql)
    finally:
        await conn.close(timeout=timeout_s)
