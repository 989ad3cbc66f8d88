"""The processes of one deployment, each its own OS process, so a test can kill exactly one.

Production as the README runs it on one host, but with `loanflow api` and
`loanflow worker` started one by one instead of `serve --api-workers 2`: each
API process listens on its own port and the load driver spreads requests over
them as a load balancer would; nothing respawns a process behind the test's
back, so a kill or a rolling restart does exactly what the test says.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.conftest import LOANFLOW, Deployment, free_port

#: Bounded waits: a process coming up (migrations included) and one stopping on SIGTERM.
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
#: What `loanflow worker` logs once its processors run.
WORKER_READY = b"worker running"


class Proc:
    """One `loanflow ROLE` process; `start()` again after a stop keeps its name and port.

    `prefix`: the command it runs under (`ip netns exec NS`: another host's network);
    `host`/`port`: where an HTTP role listens (default loopback and a free port)."""

    def __init__(
        self, role: str, index: int, env: dict[str, str], log_dir: Path, *,
        prefix: Sequence[str] = (), host: str = "127.0.0.1", port: int | None = None,
    ) -> None:
        self.role, self.name = role, f"{role}-{index}"
        self.host = host
        self.port = None if role == "worker" else port or free_port()
        self._prefix = list(prefix)
        self._env = env
        self.log_path = log_dir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, *, wait: bool = True) -> Proc:
        args = [*self._prefix, *LOANFLOW, self.role]
        if self.port is not None:
            args += ["--host", self.host, "--port", str(self.port)]
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self._env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
            if self._ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {READY_TIMEOUT_S}s: {self.log_tail()}")

    def _ready(self) -> bool:
        if self.port is None:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                return WORKER_READY in log.read()
        try:
            return httpx.get(self.url + "/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or the OOM killer."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT_S)

    def terminate(self) -> int:
        """SIGTERM, a graceful stop; its exit code (-9: it did not stop, SIGKILL'd after
        STOP_TIMEOUT_S). uvicorn re-raises the SIGTERM once shut down: -15 is graceful too."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.wait()

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""


class Cluster:
    """`apis` API processes and `workers` worker processes over one deployment;
    `serve=True`: one all-in-one `loanflow serve` instead (the embedded mode)."""

    def __init__(
        self, deployment: Deployment, log_dir: Path, *, apis: int = 2, workers: int = 2,
        serve: bool = False, settings: dict[str, str] | None = None,
    ) -> None:
        env = {**os.environ, "LOANFLOW_POLL_INTERVAL_S": "0.02", **deployment.env()}
        env.update({f"LOANFLOW_{k.upper()}": v for k, v in (settings or {}).items()})
        log_dir.mkdir(parents=True, exist_ok=True)
        #: What every process of it runs with (a subclass may add processes).
        self.env, self.log_dir = env, log_dir
        if serve:
            self.apis, self.workers = [Proc("serve", 0, env, log_dir)], []
        else:
            self.apis = [Proc("api", i, env, log_dir) for i in range(apis)]
            self.workers = [Proc("worker", i, env, log_dir) for i in range(workers)]

    @property
    def procs(self) -> list[Proc]:
        return [*self.apis, *self.workers]

    @property
    def urls(self) -> list[str]:
        return [p.url for p in self.apis]

    def start(self) -> Cluster:
        # The API processes first: the first one to open the store runs the migrations.
        for proc in self.procs:
            proc.start(wait=False)
        for proc in self.procs:
            proc.wait_ready()
        return self

    def stop(self) -> None:
        for proc in self.procs:
            if proc.alive():
                proc.proc.terminate()  # type: ignore[union-attr]
        for proc in self.procs:
            if proc.proc is not None:
                proc.terminate()
