"""Memory (Redis) and disk (SQLite) of the metrics history: a simulated week at a given load.

    .venv/bin/python -m benchmarks.history_footprint [RATE_PER_S ...]

For each rate: per-second tallies as a process under that load flushes them (six
latency histograms, counters, gauges), written through the series for 65 minutes
(the per-second retention) and rolled up minute by minute as the RollUp task does;
then the rest of the 7 days + 1 hour of minutes stored as a roll-up stores them (a
key per minute in Redis, a row in SQLite), each a merge of 60 such seconds.
Prints the bytes per key (Redis MEMORY USAGE) and the SQLite file's size.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import sys
import tempfile
from pathlib import Path

from tests.throwaway.redis import RedisServer

from loanflow.backends.redis import keys
from loanflow.backends.redis.series import RedisSeries
from loanflow.backends.sqlite.series import SQLiteSeries
from loanflow.metrics import names
from loanflow.metrics.recorder import Recorder
from loanflow.metrics.series_base import (
    MINUTE_RETENTION_S,
    MINUTE_S,
    SECOND_RETENTION_S,
    MetricsSeries,
    TaggedDelta,
)
from loanflow.metrics.tally import Tally, merged, pack

#: ln(seconds) of each histogram's median, as the benchmarks measured them roughly.
MEDIANS = {names.END_TO_END: -3.5, names.API: -7.0, names.QUEUE_WAIT: -4.0,
           names.VALIDATION: -9.0, names.ENRICHMENT: -8.0, names.STORE: -5.5}
START = 1_800_000_000 // 3600 * 3600
SAMPLES = 60


def second_tally(rng: random.Random, rate: int) -> Tally:
    recorder = Recorder()
    recorder.count(names.RECEIVED, rate)
    recorder.count(names.ACCEPTED, rate)
    for channel in ("web", "mobile", "partner_api"):
        recorder.count(names.BY_CHANNEL, max(1, rate // 3), label=channel)
    recorder.count(names.REFUSED_4XX, max(1, rate // 50), label=422)
    for _ in range(rate):
        recorder.completed("stored")
        for name, mu in MEDIANS.items():
            recorder.observe(name, rng.lognormvariate(mu, 0.6))
    tally = recorder.take_delta()
    tally.gauges[names.QUEUE_DEPTH] = rng.randrange(500)
    tally.gauges[names.QUEUE_LAG_MS] = rng.randrange(2000)
    return tally


#: The minutes stored beside those the per-second hour rolls up.
OLDER_MINUTES = range(START - MINUTE_RETENTION_S, START - SECOND_RETENTION_S, MINUTE_S)


async def fill(series: MetricsSeries, seconds: list[Tally]) -> None:
    """The last 65 minutes second by second, each minute rolled up once it ended."""
    seq = 0
    for minute in range(START - SECOND_RETENTION_S, START, MINUTE_S):
        deltas = []
        for i, second in enumerate(range(minute, minute + MINUTE_S)):
            seq += 1
            deltas.append(TaggedDelta("p", seq, second, seconds[i % len(seconds)]))
        await series.write(deltas)
        await series.roll_up([minute])


async def redis_figures(server: RedisServer, seconds: list[Tally],
                        minutes: list[Tally]) -> dict[str, float]:
    server.flushall()
    series = RedisSeries.from_url(server.url)
    await series.open()
    try:
        await fill(series, seconds)
        await series.write([TaggedDelta("q", 1, START + 1, seconds[0])])  # not rolled up yet
    finally:
        await series.close()
    client = server.client()
    with client.pipeline(transaction=False) as pipe:
        for i, minute in enumerate(OLDER_MINUTES):
            pipe.set(keys.minute_key(minute), pack(minutes[i % len(minutes)]),
                     ex=MINUTE_RETENTION_S)
        pipe.execute()
    sizes: dict[str, list[int]] = {"s": [], "p": [], "m": []}
    for key in client.scan_iter(keys.METRICS_PREFIX + "*", count=1000):
        kind = key.decode()[len(keys.METRICS_PREFIX):].split(":")[0]
        if kind in sizes:
            sizes[kind].append(int(client.memory_usage(key, samples=0) or 0))
    return {"hash_second_b": sum(sizes["s"]) / max(1, len(sizes["s"])),
            "packed_second_b": sum(sizes["p"]) / max(1, len(sizes["p"])),
            "minute_b": sum(sizes["m"]) / max(1, len(sizes["m"])),
            "packed_seconds": len(sizes["p"]), "minutes": len(sizes["m"]),
            "total_mb": (sum(sizes["p"]) + sum(sizes["m"])) / 1e6}


async def sqlite_figures(path: Path, seconds: list[Tally], minutes: list[Tally]) -> float:
    series = SQLiteSeries(path)
    await series.open()
    try:
        await fill(series, seconds)
    finally:
        await series.close()
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany("INSERT INTO minutes (minute, tally) VALUES (?, ?)",
                         [(m, pack(minutes[i % len(minutes)]))
                          for i, m in enumerate(OLDER_MINUTES)])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path.stat().st_size / 1e6


def main(rates: list[int]) -> None:
    rng = random.Random(1)
    server = RedisServer().start()
    try:
        for rate in rates:
            seconds = [second_tally(rng, rate) for _ in range(SAMPLES)]
            minutes = [merged(seconds), merged(reversed(seconds))]
            figures = asyncio.run(redis_figures(server, seconds, minutes))
            with tempfile.TemporaryDirectory() as tmp:
                disk_mb = asyncio.run(sqlite_figures(Path(tmp) / "metrics.db", seconds, minutes))
            print(f"{rate}/s: packed second {len(pack(seconds[0]))} B, minute "
                  f"{len(pack(minutes[0]))} B msgpack; Redis: "
                  f"hash second {figures['hash_second_b']:.0f} B, packed second "
                  f"{figures['packed_second_b']:.0f} B, minute {figures['minute_b']:.0f} B, "
                  f"{figures['packed_seconds']:.0f} seconds + {figures['minutes']:.0f} minutes "
                  f"= {figures['total_mb']:.1f} MB; SQLite file {disk_mb:.1f} MB")
    finally:
        server.stop()
        server.remove()


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10, 100, 1000])
