"""Bytes and server time of one refresh of the dashboard's 7 d chart: the whole range
(what each refresh fetched before) against the part after `final_through`.

    .venv/bin/python -m benchmarks.history_refresh [RATE_PER_S]

The app in-process on embedded SQLite, over a week of per-minute history at that load
(100/s by default; seconds as history_footprint makes them, six latency histograms,
at 0.5 to 1.5 times the rate; each minute a merge of 60 of them drawn at random, so no
two points are alike) stored up to two minutes ago, and the seconds since flushed as a
process would: what a dashboard asks of a server that has run all week.
Prints the answer's body bytes (and gzip's, what a compressing proxy would send) and
the median time to answer over a few calls, for the whole range and for refreshes of
1 point (the usual one), 2 (the newest again, as it was not final) and 61 (the page
asleep for an hour).
"""

from __future__ import annotations

import asyncio
import gzip
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import msgspec
from tests.api.inprocess import InProcessApp, running_app
from tests.conftest import auth

from benchmarks.history_footprint import second_tally
from loanflow.backends import SERIES_FILE
from loanflow.backends.sqlite.series import SQLiteSeries
from loanflow.metrics.series_base import MINUTE_HISTORY_S, MINUTE_S, TaggedDelta
from loanflow.metrics.tally import merged, pack
from loanflow.settings import Settings

#: Calls timed per figure.
CALLS = 7


def store_the_week(data_dir: Path, rate: int, now_s: int) -> None:
    """Per-minute history of the week before the last two minutes, as roll-ups left it."""
    rng = random.Random(7)
    # Seconds of half to one and a half times the rate; each minute draws its own 60.
    pool = [second_tally(rng, rate * (2 + i % 5) // 4) for i in range(2 * MINUTE_S)]
    newest = now_s // MINUTE_S * MINUTE_S - 2 * MINUTE_S
    week = range(newest - MINUTE_HISTORY_S, newest + 1, MINUTE_S)
    rows = [(minute, pack(merged(rng.choices(pool, k=MINUTE_S)))) for minute in week]
    path = data_dir / SERIES_FILE
    asyncio.run(create_schema(path))
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany("INSERT INTO minutes (minute, tally) VALUES (?, ?)", rows)
    conn.close()


async def create_schema(path: Path) -> None:
    """The file's tables, as a process opening it makes them."""
    series = SQLiteSeries(path)
    await series.open()
    await series.close()


def flush_recent_seconds(app: InProcessApp, rate: int, now_s: int) -> None:
    """The seconds since the stored history, flushed as a process under load does."""
    rng = random.Random(8)
    first = now_s // MINUTE_S * MINUTE_S - MINUTE_S
    deltas = [TaggedDelta("bench", seq, second, second_tally(rng, rate))
              for seq, second in enumerate(range(first, now_s - 1), start=1)]
    app.call(app.runtime.metrics.series.write, deltas)


def measure(app: InProcessApp, key: str, **params: str) -> tuple[bytes, float]:
    """The answer's body, and the median milliseconds to get it."""
    times_ms, body = [], b""
    for _ in range(CALLS):
        started = time.perf_counter()
        answer = app.request("GET", "/v1/metrics/series", params=params, headers=auth(key))
        times_ms.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
        body = answer.content
    return body, statistics.median(times_ms)


def main(rate: int) -> None:
    now_s = int(time.time())
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        store_the_week(data_dir, rate, now_s)
        with running_app(Settings(data_dir=data_dir)) as app:
            flush_recent_seconds(app, rate, now_s)
            key = app.key("read")
            whole, whole_ms = measure(app, key, range="7d")
            newest = msgspec.json.decode(whole)["t"][-1]
            print(f"{rate}/s, 7 d range; final_through "
                  f"{msgspec.json.decode(whole)['final_through'] - newest:+d} s from the newest")
            rows = [("whole range", whole, whole_ms)]
            for points, label in ((1, "refresh, 1 point"), (2, "refresh, 2 points"),
                                  (61, "refresh after an hour asleep")):
                part, part_ms = measure(app, key, range="7d",
                                        after=str(newest - points * MINUTE_S))
                assert len(msgspec.json.decode(part)["t"]) == points
                rows.append((label, part, part_ms))
    for label, body, ms in rows:
        print(f"  {label:30} {len(body):>10,} B  gzip {len(gzip.compress(body)):>8,} B"
              f"  {ms:7.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
