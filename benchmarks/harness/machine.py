"""The machine a benchmark ran on: what a reader needs to compare figures."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from tests.throwaway.postgres import BIN as POSTGRES_BIN
from tests.throwaway.redis import REDIS_SERVER

#: The libraries on the hot path, by distribution name.
LIBRARIES = ("uvicorn", "starlette", "uvloop", "httptools", "msgspec", "asyncpg", "redis",
             "hiredis", "cryptography", "hdrhistogram", "websockets")


def describe() -> dict[str, Any]:
    meminfo = _first_line_with("/proc/meminfo", "MemTotal:")
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": _first_line_with("/proc/cpuinfo", "model name").partition(":")[2].strip(),
        "ram_gib": round(int(meminfo.split()[1]) / 2**20, 1) if meminfo else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "redis_server": _command_version([str(REDIS_SERVER), "--version"]),
        "postgres": _command_version([str(POSTGRES_BIN / "postgres"), "--version"]),
        "load_average": load_average(),
    }


def cpu_ticks() -> tuple[int, int]:
    """(stolen, all) CPU ticks of the whole machine since boot, from /proc/stat's `cpu` line.

    Steal is time this VM was ready to run but the hypervisor ran another guest: on a
    shared host it slows every process here without any load of ours showing it.
    """
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0, 0
    # user nice system idle iowait irq softirq steal (guest time is inside user already)
    ticks = [int(value) for value in first[1:9]]
    return ticks[7], sum(ticks)


def steal_share(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """The share of the machine's CPU time stolen between two `cpu_ticks()` readings."""
    stolen, total = after[0] - before[0], after[1] - before[1]
    return round(stolen / total, 3) if total > 0 else None


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: above nproc, something else was running."""
    return [round(x, 2) for x in os.getloadavg()]


def _first_line_with(path: str, prefix: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line
    except OSError:
        pass
    return ""


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _command_version(argv: list[str]) -> str | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        return None
