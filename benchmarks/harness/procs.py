"""Processes as /proc shows them: a process tree, labels, RSS, sampled over time."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

_PROC = Path("/proc")
#: Bound on the samples one RssSampler keeps.
MAX_SAMPLES = 10_000


def children_of() -> dict[int, list[int]]:
    """parent pid -> child pids, for every process now."""
    tree: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                # Field 4 of stat is the parent; the name (field 2) may hold spaces.
                parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
                tree.setdefault(parent, []).append(int(entry.name))
    return tree


def tree(root: int) -> list[int]:
    """`root` and all its descendants that are alive now."""
    children, found, todo = children_of(), [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cmdline(pid: int) -> str:
    try:
        return (_PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def rss_mb(pid: int) -> float | None:
    """Resident set size in MiB, None if the process is gone."""
    try:
        for line in (_PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """User + system CPU seconds each process has used so far (gone ones left out)."""
    tick_s = 1 / os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            # After the ")" of the name: utime and stime are fields 12 and 13 (0-based).
            fields = (_PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()
            used[pid] = (int(fields[11]) + int(fields[12])) * tick_s
    return used


def cpu_by_label(before: dict[int, float], after: dict[int, float]) -> dict[str, float]:
    """CPU seconds between two `cpu_seconds` readings, summed per process label.

    A process only in `after` was born in between (a new pooled database
    connection): all its CPU counts. One gone by `after` is left out.
    """
    spent: dict[str, float] = {}
    for pid, seconds in after.items():
        name = label(pid)
        spent[name] = spent.get(name, 0.0) + seconds - before.get(pid, 0.0)
    return spent


def label(pid: int) -> str:
    """A short stable name for a process of the benchmark."""
    text = cmdline(pid)
    if "loanflow worker" in text:
        return "loanflow worker"
    if "loanflow serve" in text:
        return "loanflow serve"
    if "resource_tracker" in text:
        return "multiprocessing resource tracker"
    if "multiprocessing" in text:
        return "uvicorn api worker"
    if text.startswith("postgres:"):
        role = text.partition(":")[2].strip()
        aux = ("checkpointer", "background writer", "walwriter", "autovacuum launcher",
               "logical replication launcher")
        return "postgres " + next((a for a in aux if role.startswith(a)), "backend")
    if "postgres" in text:
        return "postgres postmaster"
    if "redis-server" in text:
        return "redis-server"
    return text.split(" ")[0].rsplit("/", 1)[-1] or str(pid)


class RssSampler:
    """Samples RSS of every process `pids()` lists (asked each time) every `interval_s`."""

    def __init__(self, pids: Callable[[], Iterable[int]], *, interval_s: float) -> None:
        self._pids, self._interval_s = pids, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        #: (seconds since start, {"label pid": MiB})
        self.samples: list[tuple[float, dict[str, float]]] = []
        #: CPU seconds of each process at its first and its latest sample.
        self._cpu_first: dict[int, float] = {}
        self._cpu_last: dict[int, float] = {}
        self._labels: dict[int, str] = {}
        self.started_unix_s = 0.0

    def __enter__(self) -> RssSampler:
        self._began = time.monotonic()
        self.started_unix_s = time.time()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while len(self.samples) < MAX_SAMPLES:
            snapshot: dict[str, float] = {}
            pids = self._pids()
            for pid in pids:
                mb = rss_mb(pid)
                if mb is not None:
                    name = self._labels.setdefault(pid, label(pid))
                    snapshot[f"{name} {pid}"] = round(mb, 1)
            cpu = cpu_seconds(pids)
            born = dict.fromkeys(cpu, 0.0) if self.samples else cpu  # after the start: all
            self._cpu_first = {**born, **self._cpu_first}
            self._cpu_last.update(cpu)
            self.samples.append((round(time.monotonic() - self._began, 1), snapshot))
            if self._stop.wait(self._interval_s):
                return

    def cpu_by_label(self) -> dict[str, float]:
        """CPU seconds per process kind over the sampling, processes that ended included
        (up to their last sample): unlike two readings, a recycled connection counts."""
        spent: dict[str, float] = {}
        for pid, seconds in self._cpu_last.items():
            name = self._labels.get(pid, str(pid))
            spent[name] = spent.get(name, 0.0) + seconds - self._cpu_first[pid]
        return spent

    def series(self) -> dict[str, Any]:
        """{"t_s": [...], "processes": {name: [MiB or None, ...]}} for the report."""
        names = sorted({name for _, snap in self.samples for name in snap})
        return {"t_s": [t for t, _ in self.samples],
                "processes": {n: [snap.get(n) for _, snap in self.samples] for n in names}}
