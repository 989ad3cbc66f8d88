"""A throwaway PostgreSQL primary with a synchronous standby, from the installed binaries.

The primary is a PostgresServer (tests/throwaway/postgres.py) with
`synchronous_standby_names` naming the standby, so a COMMIT returns only once the
standby has flushed its WAL. The standby is made with `pg_basebackup -R` (it writes
`standby.signal` and `primary_conninfo`, with the application name the primary waits
for) and streams from the primary. `stop_immediate()` is `pg_ctl stop -m immediate`
(no shutdown checkpoint, clients cut off, as in a crash); `promote()` is `pg_ctl promote`.

    pair = ReplicatedPostgres().start()
    pair.url("loanflow")     # postgresql://postgres@127.0.0.1:P1,127.0.0.1:P2/loanflow?…
    pair.primary.stop_immediate(); pair.standby.promote()
"""

from __future__ import annotations

import asyncio
import subprocess
import time

import asyncpg

from tests.throwaway.postgres import BIN, SERVER_SETTINGS, STOP_TIMEOUT_S, PostgresServer

#: The name the standby connects under and the primary waits for.
STANDBY_NAME = "standby1"
#: Bounded waits: the standby's copy and catching up, and a promotion.
BASEBACKUP_TIMEOUT_S = 60.0
SYNC_WAIT_S = 20.0
PROMOTE_TIMEOUT_S = 20


class ReplicaServer(PostgresServer):
    """A PostgresServer whose data directory is a base backup of `primary`."""

    def __init__(self, primary: PostgresServer) -> None:
        self._primary = primary
        super().__init__()  # no synchronous_standby_names: promoted, it must not wait

    def _init_db(self) -> None:
        conninfo = (f"host=127.0.0.1 port={self._primary.port} user=postgres"
                    f" application_name={STANDBY_NAME}")
        subprocess.run(
            [str(BIN / "pg_basebackup"), "-D", str(self.data_dir), "-d", conninfo, "-R",
             "-X", "stream", "-c", "fast", "--no-sync"],
            check=True, capture_output=True, timeout=BASEBACKUP_TIMEOUT_S,
            cwd=self.directory, **self._as_user,
        )

    def promote(self) -> None:
        """`pg_ctl promote -w`: returns once it accepts writes."""
        pg_ctl(self, "promote", "-w", "-t", str(PROMOTE_TIMEOUT_S))


class PrimaryServer(PostgresServer):
    def __init__(self) -> None:
        super().__init__(settings={**SERVER_SETTINGS,
                                   "synchronous_standby_names": STANDBY_NAME,
                                   "synchronous_commit": "on"})

    def stop_immediate(self) -> None:
        """`pg_ctl stop -m immediate`: every backend quits at once, nothing is flushed
        that was not already; the next start would run crash recovery."""
        self.thaw()
        pg_ctl(self, "stop", "-m", "immediate", "-w", "-t", str(int(STOP_TIMEOUT_S)))
        assert self.proc is not None
        self.proc.wait(timeout=STOP_TIMEOUT_S)


def pg_ctl(server: PostgresServer, *args: str) -> None:
    """`pg_ctl ARGS` on the server's data directory, as the user the server runs as."""
    subprocess.run([str(BIN / "pg_ctl"), "-D", str(server.data_dir), *args], check=True,
                   capture_output=True, timeout=PROMOTE_TIMEOUT_S + 10, cwd=server.directory,
                   **server._as_user)


class ReplicatedPostgres:
    def __init__(self) -> None:
        self.primary = PrimaryServer()
        self.standby: ReplicaServer | None = None

    def start(self) -> ReplicatedPostgres:
        self.primary.start()
        self.standby = ReplicaServer(self.primary)
        self.standby.start()
        self._wait_synchronous()
        return self

    def url(self, database: str) -> str:
        """Both hosts, the primary first; the client finds whichever accepts writes."""
        assert self.standby is not None
        return (f"postgresql://postgres@127.0.0.1:{self.primary.port},"
                f"127.0.0.1:{self.standby.port}/{database}?target_session_attrs=read-write")

    def _wait_synchronous(self) -> None:
        deadline = time.monotonic() + SYNC_WAIT_S
        while time.monotonic() < deadline:
            if _sync_state(self.primary.url) == "sync":
                return
            time.sleep(0.05)
        raise RuntimeError(f"the standby is not synchronous after {SYNC_WAIT_S}s")

    def remove(self) -> None:
        for server in (self.primary, self.standby):
            if server is not None:
                if server.proc is not None and server.proc.poll() is None:
                    server.kill()
                server.remove()


def _sync_state(url: str) -> str | None:
    async def read() -> str | None:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            state: str | None = await conn.fetchval(
                "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1",
                STANDBY_NAME)
            return state
        finally:
            await conn.close(timeout=5)

    return asyncio.run(read())
