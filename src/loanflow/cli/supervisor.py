"""`serve` on one host as several OS processes: N API processes, M worker processes.

The API processes share one listening socket through uvicorn's own worker
supervisor (it restarts a dead one). The workers are `loanflow worker`
processes, restarted here when one dies. Settings reach every child through
the environment, so a flag given to `serve` holds in all of them.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import logging
import os
import signal
import subprocess
import sys
import threading
from typing import Any

from loanflow.settings import ENV_PREFIX, Settings

log = logging.getLogger(__name__)

#: prctl option: the signal a child gets when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1
#: How long a worker may take to finish its batch after SIGTERM before SIGKILL.
WORKER_STOP_TIMEOUT_S = 30.0


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes `Settings.from_env()` equal `settings` in a child."""
    env = dict(os.environ)
    for field in dataclasses.fields(settings):
        env[ENV_PREFIX + field.name.upper()] = str(getattr(settings, field.name))
    return env


class WorkerPool:
    """`count` worker processes, each one processor loop, kept alive until `stop()`."""

    def __init__(self, env: dict[str, str], count: int) -> None:
        self._env = {**env, ENV_PREFIX + "PROCESSORS": "1"}
        self._count = count
        self._procs: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="worker-watch", daemon=True)

    def start(self) -> None:
        self._procs = [self._spawn() for _ in range(self._count)]
        self._watcher.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "loanflow", "worker"], env=self._env,
                                preexec_fn=functools.partial(_end_with_parent, _prctl()))

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            for index, proc in enumerate(self._procs):
                if proc.poll() is not None and not self._stopping.is_set():
                    log.error("worker %d exited with %s; restarting", proc.pid, proc.returncode)
                    self._procs[index] = self._spawn()

    def stop(self) -> None:
        """SIGTERM each worker (it finishes or releases its batch), then wait."""
        self._stopping.set()
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=WORKER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.error("worker %d did not stop in %.0fs; killing", proc.pid,
                          WORKER_STOP_TIMEOUT_S)
                proc.kill()
                proc.wait()


@functools.cache
def _prctl() -> Any:
    """libc's prctl, looked up in the parent: the forked child should do as little as it can."""
    return ctypes.CDLL(None, use_errno=True).prctl


def _end_with_parent(prctl: Any) -> None:
    """In the child before exec: SIGTERM it when this supervisor dies, even by SIGKILL
    (no worker is left running on without the `serve` that started it)."""
    if prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def serve_processes(settings: Settings) -> int:
    import uvicorn

    from loanflow.api.server import uvicorn_options

    env = settings_env(settings)
    os.environ.update(env)  # uvicorn's API children inherit it
    workers = WorkerPool(env, settings.processor_count)
    # A lone uvicorn server raises the SIGTERM it handled again once it has shut down;
    # with the default action this process would die there, before stopping its workers.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        workers.start()
        uvicorn.run(
            "loanflow.api.app:app_from_env",
            factory=True,
            workers=settings.api_workers,
            **uvicorn_options(settings),
        )
    finally:
        workers.stop()
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)  # unwinds through serve_processes' `finally`: the workers stop first
