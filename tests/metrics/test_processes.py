"""Real OS processes, one SQLite metrics file: their flushes add up exactly."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from loanflow.backends.sqlite.series import SQLiteSeries
from loanflow.metrics import names
from tests.metrics.conftest import opened

#: Starts writer processes: the slow tier.
pytestmark = pytest.mark.slow

T0 = 1_800_000_000
SECONDS = 30

#: One "process": records 1..SECONDS applications in successive seconds and flushes each.
WRITER = f"""
import asyncio, sys
from pathlib import Path
from loanflow.metrics import names
from loanflow.metrics.flusher import Flusher
from loanflow.metrics.recorder import Recorder
from loanflow.backends.sqlite.series import SQLiteSeries

async def main() -> None:
    series = SQLiteSeries(Path(sys.argv[1]))
    await series.open()
    recorder = Recorder()
    flusher = Flusher(recorder, series)
    for n in range(1, {SECONDS} + 1):
        recorder.count(names.RECEIVED, n)
        recorder.observe(names.STORE, 0.001 * n)
        await flusher.flush(now_s={T0} + n + 0.05)
    await series.close()

asyncio.run(main())
"""


def test_flushes_of_concurrent_processes_into_one_file_add_up(tmp_path: Path) -> None:
    path = tmp_path / "metrics.db"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path)]) for _ in range(4)]
    assert [w.wait(timeout=60) for w in writers] == [0, 0, 0, 0]

    async def read() -> tuple[int, int, dict[int, int]]:
        async with opened(SQLiteSeries(path)) as series:
            totals = await series.read_totals()
            seconds = await series.read_seconds(T0, T0 + SECONDS)
        per_second = {s: t.counters[names.RECEIVED] for s, t in seconds.items()}
        return totals.counters[names.RECEIVED], totals.histograms[names.STORE].count, per_second

    received, stored, per_second = asyncio.run(read())

    assert received == 4 * SECONDS * (SECONDS + 1) // 2
    assert stored == 4 * SECONDS
    assert per_second == {T0 + n - 1: 4 * n for n in range(1, SECONDS + 1)}
