"""py-spy under load: where each Python process of a service spends its time.

One `py-spy record --nonblocking` per process (it reads the target's memory
without stopping it, so the load is barely disturbed; it needs ptrace, which
root has), in py-spy's collapsed-stack format, aggregated by function. The
summary per process: samples, the share of wall time it was busy in Python,
the top functions by own time (self, any code), and the top loanflow functions
with their callees (total; entry points such as `main` left out, they are
always ~100%).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.harness.procs import cmdline, label

#: Samples per second (py-spy's default).
RATE_HZ = 100
TOP = 12
#: Frames on every stack of a process: no information in their total.
_ENTRY_POINTS = ("loanflow/cli/main.py", "loanflow/__main__.py", "loanflow/process/runtime.py")


def py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profiler:
    """Starts py-spy on `pids` now; `finish()` waits for it and summarises."""

    def __init__(self, pids: list[int], *, duration_s: float) -> None:
        binary = py_spy()
        if binary is None:
            raise FileNotFoundError("py-spy is not installed (pip install '.[bench]')")
        self._dir = Path(tempfile.mkdtemp(prefix="loanflow-pyspy-"))
        self._duration_s = duration_s
        self._runs: list[tuple[int, str, Path, subprocess.Popen[bytes]]] = []
        for pid in pids:
            if "python" not in cmdline(pid) and "loanflow" not in cmdline(pid):
                continue  # redis, postgres: not Python
            out = self._dir / f"{pid}.txt"
            proc = subprocess.Popen(
                [binary, "record", "--pid", str(pid), "--duration", str(max(1, round(duration_s))),
                 "--rate", str(RATE_HZ), "--format", "raw", "--function", "--nonblocking",
                 "--output", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self._runs.append((pid, label(pid), out, proc))

    def finish(self) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for pid, name, out, proc in self._runs:
            try:
                _, err = proc.communicate(timeout=self._duration_s + 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            key = f"{name} {pid}"
            if not out.exists():
                results[key] = {"error": err.decode(errors="replace")[-300:]}
                continue
            results[key] = summarize(out.read_text(), seconds=self._duration_s)
        shutil.rmtree(self._dir, ignore_errors=True)
        return results


def summarize(collapsed: str, *, seconds: float) -> dict[str, Any]:
    """Top functions of py-spy's collapsed stacks ("f1;f2;f3 COUNT" per line)."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            if "(loanflow/" in frame and not any(e in frame for e in _ENTRY_POINTS):
                total[frame] += count
    if not samples:
        return {"samples": 0, "busy_share": 0.0, "self": [], "total": []}

    def top(counter: Counter[str]) -> list[list[Any]]:
        return [[frame, round(100 * n / samples, 1)] for frame, n in counter.most_common(TOP)]

    return {"samples": samples, "busy_share": round(samples / (RATE_HZ * seconds), 3),
            "self": top(own), "total": top(total)}


def _short(frame: str) -> str:
    """`func (/long/path/site-packages/pkg/mod.py:12)` -> `func (pkg/mod.py:12)`."""
    name, _, where = frame.partition(" (")
    for marker in ("site-packages/", "/lib/python3.11/", "/src/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where}" if where else name
