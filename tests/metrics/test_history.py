"""The longer history, on SQLite and on Redis: per-second points for an hour, per-minute
points for 7 days, rolled up correctly, bounded, and kept across a restart.

Time is injected (each write names its second, each read its "now"): nothing sleeps.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import msgspec
import numpy as np
import pytest

from loanflow.backends.redis import keys
from loanflow.backends.sqlite.series import SQLiteSeries
from loanflow.metrics import names
from loanflow.metrics.aggregate import Aggregator
from loanflow.metrics.flusher import Flusher
from loanflow.metrics.recorder import Recorder
from loanflow.metrics.rollup import ROLL_UP_DELAY_S, RollUp, due_minutes
from loanflow.metrics.series_base import (
    FLUSH_DEDUP_S,
    MINUTE_HISTORY_S,
    MINUTE_RETENTION_S,
    MINUTE_S,
    SECOND_HISTORY_S,
    SECOND_RETENTION_S,
    MetricsSeries,
    TaggedDelta,
)
from loanflow.metrics.tally import Tally, merged, percentile_s
from loanflow.metrics.views import Series
from tests.metrics.conftest import Backend, opened
from tests.throwaway.redis import RedisServer

#: A minute's first second, far from any real clock (Redis TTLs still run in real time).
M0 = 1_800_000_000 // MINUTE_S * MINUTE_S
DAY_S = 24 * 60 * 60


def settled_after(second: int) -> float:
    """A time at which `second` is the newest settled second."""
    return second + 1.6


def random_second(rng: random.Random, *, rate: int) -> tuple[Tally, list[float]]:
    """One process's delta for one second: counters, two histograms, gauges; and the
    end-to-end samples it holds."""
    recorder = Recorder()
    recorder.count(names.RECEIVED, rate)
    recorder.answered(422)
    samples = [rng.lognormvariate(-4.0, 0.8) for _ in range(rate)]
    for value in samples:
        recorder.completed("stored", end_to_end_s=value)
        recorder.observe(names.STORE, rng.lognormvariate(-6.0, 0.5))
    tally = recorder.take_delta()
    tally.gauges[names.QUEUE_DEPTH] = rng.randrange(0, 500)
    tally.gauges[names.QUEUE_LAG_MS] = rng.randrange(0, 3000)
    return tally, samples


async def write_minute(series: MetricsSeries, minute: int, rng: random.Random, *,
                       processes: int = 2, rate: int = 20) -> tuple[Tally, list[float]]:
    """Every second of `minute` written by `processes` processes; returns what they wrote,
    merged, and the raw end-to-end samples."""
    written, samples = [], []
    for p in range(processes):
        deltas = []
        for second in range(minute, minute + MINUTE_S):
            tally, values = random_second(rng, rate=rate)
            deltas.append(TaggedDelta(f"p{p}", second, second, tally))
            written.append(tally)
            samples.extend(values)
        await series.write(deltas)
    return merged(written), samples


def test_a_minute_is_the_merge_of_its_seconds(backend: Backend) -> None:
    """Counts and buckets summed, maxima and gauges the largest: percentiles come from the
    merged histogram, never an average of each second's."""
    rng = random.Random(20)

    async def scenario() -> tuple[Tally, Tally, list[float], dict[int, Tally], dict[int, Tally]]:
        async with opened(backend.series()) as series:
            expected, samples = await write_minute(series, M0, rng)
            before = await series.read_seconds(M0, M0 + MINUTE_S - 1)
            assert await series.roll_up([M0]) == [M0]
            minutes = await series.read_minutes(M0 - DAY_S, M0 + DAY_S)
            after = await series.read_seconds(M0, M0 + MINUTE_S - 1)
        return expected, minutes[M0], samples, before, after

    expected, minute, samples, before, after = asyncio.run(scenario())

    assert minute == expected
    assert minute.counters[names.RECEIVED] == 2 * 60 * 20
    assert minute.gauges[names.QUEUE_DEPTH] == max(t.gauges[names.QUEUE_DEPTH]
                                                   for t in before.values())
    e2e = minute.histograms[names.END_TO_END]
    assert e2e.max_ns == max(t.histograms[names.END_TO_END].max_ns for t in before.values())
    raw = np.array(samples)
    for q in (0.50, 0.95, 0.99):
        assert percentile_s(e2e, q) == pytest.approx(float(np.quantile(raw, q)), rel=0.015)
    # The seconds, now packed, read back as they were.
    assert after == before


def test_a_minute_point_shows_per_second_rates_and_merged_percentiles(backend: Backend) -> None:
    rng = random.Random(21)

    async def scenario() -> tuple[dict[str, object], list[float]]:
        async with opened(backend.series()) as series:
            _, samples = await write_minute(series, M0, rng, rate=30)
            await series.roll_up([M0])
            result = await Aggregator(series).minute_series(
                DAY_S, now_s=settled_after(M0 + MINUTE_S - 1))
        i = result.t.index(M0)
        return {"t": result.t, "step_s": result.step_s, "received": result.received_per_s[i],
                "errors": result.errors_per_s[i], "p99": result.e2e_p99_ms[i],
                "depth": result.queue_depth[i]}, samples

    got, samples = asyncio.run(scenario())

    assert got["step_s"] == 60
    assert got["t"] == list(range(M0 - DAY_S + MINUTE_S, M0 + MINUTE_S, MINUTE_S))
    assert got["received"] == 2 * 30  # 3,600 received over 60 s
    assert got["errors"] == 2  # one 422 a second from each process
    assert got["p99"] == pytest.approx(float(np.quantile(samples, 0.99)) * 1000, rel=0.015)
    assert isinstance(got["depth"], int) and 0 <= got["depth"] < 500


def test_per_minute_points_span_7_days(backend: Backend) -> None:
    newest = M0 + 7 * DAY_S
    busy = {newest - MINUTE_HISTORY_S + MINUTE_S: 60, newest - 3 * DAY_S: 120, newest: 600}

    async def scenario() -> list[tuple[int, float]]:
        async with opened(backend.series()) as series:
            for minute, received in busy.items():
                await series.write([TaggedDelta("p", minute, minute + 7,
                                                Tally(counters={names.RECEIVED: received}))])
                await series.roll_up([minute])
            result = await Aggregator(series).minute_series(
                MINUTE_HISTORY_S, now_s=settled_after(newest + MINUTE_S - 1))
        assert len(result.t) == MINUTE_HISTORY_S // MINUTE_S
        return [(t, r) for t, r in zip(result.t, result.received_per_s, strict=True) if r]

    assert asyncio.run(scenario()) == [(m, r / 60) for m, r in busy.items()]


def test_the_newest_minute_shows_before_it_is_rolled_up(backend: Backend) -> None:
    async def scenario() -> tuple[float, float]:
        async with opened(backend.series()) as series:
            await series.write([TaggedDelta("p", 1, M0 + 30, Tally(counters={names.RECEIVED: 90}))])
            aggregator = Aggregator(series)
            now_s = settled_after(M0 + MINUTE_S - 1)
            before = await aggregator.minute_series(DAY_S, now_s=now_s)
            await series.roll_up([M0])
            after = await aggregator.minute_series(DAY_S, now_s=now_s)
        return before.received_per_s[-1], after.received_per_s[-1]

    assert asyncio.run(scenario()) == (1.5, 1.5)


def test_per_second_points_span_an_hour_across_rolled_up_and_fresh_seconds(
    backend: Backend,
) -> None:
    newest = M0 + SECOND_HISTORY_S

    async def scenario() -> list[tuple[int, float]]:
        async with opened(backend.series()) as series:
            busy = {M0 + 1: 3, M0 + 1800: 5, newest - 2: 7}
            for seq, (second, received) in enumerate(busy.items(), start=1):
                await series.write([TaggedDelta("p", seq, second,
                                                Tally(counters={names.RECEIVED: received}))])
            # What the roll-up task would have done by now: all but the last two minutes.
            await series.roll_up(due_minutes(newest + 1))
            result = await Aggregator(series).series(SECOND_HISTORY_S,
                                                     now_s=settled_after(newest))
        assert result.t == list(range(M0 + 1, newest + 1))
        return [(t, r) for t, r in zip(result.t, result.received_per_s, strict=True) if r]

    assert asyncio.run(scenario()) == [(M0 + 1, 3), (M0 + 1800, 5), (newest - 2, 7)]


def test_history_survives_a_restart_of_every_process(backend: Backend) -> None:
    """A new backend object on the same storage (a restarted process) sees the past."""
    rng = random.Random(22)

    async def before_restart() -> Tally:
        async with opened(backend.series()) as series:
            written, _ = await write_minute(series, M0, rng, processes=1)
            await write_minute(series, M0 + MINUTE_S, rng, processes=1)
            await RollUp(series).tick(now_s=M0 + 2 * MINUTE_S + ROLL_UP_DELAY_S)
        return written

    async def after_restart() -> tuple[Tally, dict[int, Tally], list[float], list[float]]:
        async with opened(backend.series()) as series:
            minutes = await series.read_minutes(M0, M0 + MINUTE_S)
            aggregator = Aggregator(series)
            now_s = settled_after(M0 + 2 * MINUTE_S - 1)
            per_minute = await aggregator.minute_series(DAY_S, now_s=now_s)
            per_second = await aggregator.series(SECOND_HISTORY_S, now_s=now_s)
        return (minutes[M0], minutes, per_minute.received_per_s[-2:],
                per_second.received_per_s[-2 * MINUTE_S:])

    written = asyncio.run(before_restart())
    minute, minutes, per_minute, per_second = asyncio.run(after_restart())

    assert minute == written
    assert set(minutes) == {M0, M0 + MINUTE_S}  # both rolled up before the restart
    assert per_minute == [20, 20]
    assert per_second == [20] * (2 * MINUTE_S)


def test_the_roll_up_task_rolls_up_finished_minutes_only(backend: Backend) -> None:
    async def scenario() -> tuple[list[int], list[int], list[int]]:
        async with opened(backend.series()) as series:
            recorder = Recorder()
            flusher = Flusher(recorder, series, process="p")
            for second in range(M0 + 50, M0 + MINUTE_S + 5):
                recorder.count(names.RECEIVED)
                await flusher.flush(now_s=second + 1.05)
            roll_up = RollUp(series)
            # The minute has ended, but a late flush could still come: not yet.
            early = await roll_up.tick(now_s=M0 + MINUTE_S + ROLL_UP_DELAY_S - 0.5)
            on_time = await roll_up.tick(now_s=M0 + MINUTE_S + ROLL_UP_DELAY_S)
            again = await roll_up.tick(now_s=M0 + MINUTE_S + ROLL_UP_DELAY_S + 30)
        return [m for m in early if m >= M0], on_time, again

    early, on_time, again = asyncio.run(scenario())

    assert early == []
    assert on_time[-1] == M0 and M0 + MINUTE_S not in on_time
    assert again == []  # each minute once


def test_processes_rolling_up_at_once_roll_each_minute_up_once(backend: Backend) -> None:
    rng = random.Random(23)

    async def scenario() -> tuple[list[list[int]], Tally, Tally]:
        async with opened(backend.series()) as a, opened(backend.series()) as b:
            expected, _ = await write_minute(a, M0, rng)
            await write_minute(a, M0 + MINUTE_S, rng)
            minutes = [M0, M0 + MINUTE_S]
            done = await asyncio.gather(a.roll_up(minutes), b.roll_up(minutes),
                                        a.roll_up(minutes), b.roll_up(minutes))
            rolled = await b.read_minutes(M0, M0 + MINUTE_S)
        return list(done), rolled[M0], expected

    done, minute, expected = asyncio.run(scenario())

    assert sorted(m for d in done for m in d) == [M0, M0 + MINUTE_S]
    assert minute == expected


def test_a_flush_later_than_the_roll_up_still_counts_in_its_second(backend: Backend) -> None:
    async def scenario() -> tuple[int, int, int]:
        async with opened(backend.series()) as series:
            await series.write([TaggedDelta("a", 1, M0 + 5, Tally(counters={names.RECEIVED: 2}))])
            await series.roll_up([M0])
            # Process b was cut off from the backend; its delta for that second comes now.
            await series.write([TaggedDelta("b", 1, M0 + 5, Tally(counters={names.RECEIVED: 3}))])
            second = (await series.read_seconds(M0 + 5, M0 + 5))[M0 + 5]
            minute = (await series.read_minutes(M0, M0))[M0]
            totals = await series.read_totals(histograms=False)
        return (second.counters[names.RECEIVED], minute.counters[names.RECEIVED],
                totals.counters[names.RECEIVED])

    # The minute was final when it was rolled up; the second and the totals are not lost.
    assert asyncio.run(scenario()) == (5, 2, 5)


def test_sqlite_forgets_seconds_after_an_hour_and_minutes_after_7_days(tmp_path: Path) -> None:
    old_minute = M0
    newest = M0 + MINUTE_RETENTION_S + MINUTE_S

    async def scenario() -> tuple[set[int], set[int], set[int], set[int]]:
        async with opened(SQLiteSeries(tmp_path / "m.db")) as series:
            for minute in (old_minute, newest - SECOND_RETENTION_S - MINUTE_S, newest):
                await series.write([TaggedDelta("p", minute, minute,
                                                Tally(counters={names.RECEIVED: 1}))])
                await series.roll_up([minute])
            seconds = set(await series.read_seconds(M0, newest))
            minutes = set(await series.read_minutes(M0, newest))
        # A restart reads the same: what was pruned is gone from the file.
        async with opened(SQLiteSeries(tmp_path / "m.db")) as series:
            return (seconds, minutes, set(await series.read_seconds(M0, newest)),
                    set(await series.read_minutes(M0, newest)))

    seconds, minutes, seconds_again, minutes_again = asyncio.run(scenario())

    middle = newest - SECOND_RETENTION_S - MINUTE_S
    assert seconds == seconds_again == {newest}
    assert minutes == minutes_again == {middle, newest}


def test_redis_keys_of_the_history_expire_after_their_retention(
    metrics_redis: RedisServer,
) -> None:
    """Redis prunes by TTL (on Redis's own clock, which a test cannot move): every key
    the history writes has one, at most its retention."""
    from loanflow.backends.redis.series import RedisSeries

    metrics_redis.flushall()
    rng = random.Random(24)

    async def scenario() -> None:
        async with opened(RedisSeries.from_url(metrics_redis.url)) as series:
            await write_minute(series, M0, rng, processes=1)
            await series.write([TaggedDelta("p", 10_000, M0 + MINUTE_S + 1,
                                            Tally(counters={names.RECEIVED: 1}))])
            await series.roll_up([M0])

    asyncio.run(scenario())

    client = metrics_redis.client()
    ttls = {key.decode(): client.ttl(key) for key in client.scan_iter(keys.METRICS_PREFIX + "*")}
    never = {keys.TOTAL_COUNTERS, keys.TOTAL_HISTOGRAMS}  # Prometheus counters: kept
    limit = {keys.PACKED_SECOND_PREFIX: SECOND_RETENTION_S, keys.SECOND_PREFIX: SECOND_RETENTION_S,
             keys.MINUTE_PREFIX: MINUTE_RETENTION_S, keys.FLUSH_PREFIX: FLUSH_DEDUP_S,
             keys.ROLL_UP_CLAIM_PREFIX: 60}
    assert set(ttls) >= {keys.minute_key(M0), keys.packed_second_key(M0),
                         keys.second_key(M0 + MINUTE_S + 1)}
    assert keys.second_key(M0) not in ttls  # its hash was replaced by the packed form
    for key, ttl in ttls.items():
        if key in never:
            assert ttl == -1
            continue
        (bound,) = [v for prefix, v in limit.items() if key.startswith(prefix)]
        assert 0 < ttl <= bound, key


def test_a_minute_the_roll_up_can_still_reach_is_not_taken_as_final(backend: Backend) -> None:
    """Traffic written an hour ago, not rolled up (its process died first), is rolled up by
    a process started 9 s into a minute: its last chance (rollup.due_minutes). A series
    asked for just before that must not have fixed the minute as silent."""
    now_s = M0 + SECOND_HISTORY_S + MINUTE_S + 9
    assert due_minutes(now_s)[0] == M0

    async def scenario() -> tuple[float, float]:
        async with opened(backend.series()) as series:
            await series.write([TaggedDelta("p", 1, M0 + 30, Tally(counters={names.RECEIVED: 90}))])
            aggregator = Aggregator(series)
            before = await aggregator.minute_series(DAY_S, now_s=now_s)
            assert (await RollUp(series).tick(now_s=now_s))[0] == M0
            after = await aggregator.minute_series(DAY_S, now_s=now_s + 1)
        return (before.received_per_s[before.t.index(M0)],
                after.received_per_s[after.t.index(M0)])

    assert asyncio.run(scenario()) == (1.5, 1.5)


def _points(series: Series) -> list[dict[str, object]]:
    """Each point of `series` with all its values (its columns read across)."""
    columns = msgspec.to_builtins(series)
    flat = {name: values for name, values in columns.items() if isinstance(values, list)}
    flat.update({f"p99_ms.{stage}": values for stage, values in columns["p99_ms"].items()})
    return [{name: values[i] for name, values in flat.items()} for i in range(len(series.t))]


def _received_by_minute(series: Series) -> dict[int, float]:
    return dict(zip(series.t, series.received_per_s, strict=True))


async def _three_minutes(series: MetricsSeries) -> float:
    """Traffic in M0, M0+1 min and M0+2 min; every minute the roll-up could reach rolled
    up, the last one not yet (its roll-up is due 10 s after it ends). Returns a time
    at which M0+2 min is the newest minute shown."""
    for minute, received in ((M0, 120), (M0 + MINUTE_S, 60), (M0 + 2 * MINUTE_S, 90)):
        await series.write([TaggedDelta("p", minute, minute + 30,
                                        Tally(counters={names.RECEIVED: received}))])
    now_s = settled_after(M0 + 3 * MINUTE_S - 1)
    assert (await RollUp(series).tick(now_s=now_s))[-1] == M0 + MINUTE_S
    return now_s


def test_a_series_after_a_time_is_the_tail_of_the_whole_range(backend: Backend) -> None:
    async def scenario() -> tuple[Series, Series, Series]:
        async with opened(backend.series()) as series:
            now_s = await _three_minutes(series)
            aggregator = Aggregator(series)
            whole = await aggregator.minute_series(DAY_S, now_s=now_s)
            after_m0 = await aggregator.minute_series(DAY_S, after_s=M0, now_s=now_s)
            between = await aggregator.minute_series(DAY_S, after_s=M0 - 1, now_s=now_s)
        return whole, after_m0, between

    whole, after_m0, between = asyncio.run(scenario())

    assert after_m0.t == [M0 + MINUTE_S, M0 + 2 * MINUTE_S]
    assert _received_by_minute(after_m0) == {M0 + MINUTE_S: 1, M0 + 2 * MINUTE_S: 1.5}
    assert between.t[0] == M0  # not on a minute: the minute that starts after it
    for part in (after_m0, between):
        assert _points(part) == _points(whole)[-len(part.t):]
        assert (part.step_s, part.final_through) == (whole.step_s, whole.final_through)
    # Rolled up up to M0+1 min: the newest minute alone may still change.
    assert whole.final_through == after_m0.final_through == M0 + MINUTE_S


def test_a_minute_served_before_its_roll_up_comes_again_until_it_is_final(
    backend: Backend,
) -> None:
    newest = M0 + 2 * MINUTE_S

    async def scenario() -> list[tuple[dict[int, float], int | None]]:
        async with opened(backend.series()) as series:
            now_s = await _three_minutes(series)
            aggregator = Aggregator(series)
            seen = [await aggregator.minute_series(DAY_S, now_s=now_s)]
            # A process's flush for the newest minute arrives late, before its roll-up.
            await series.write([TaggedDelta("late", 1, newest + 50,
                                            Tally(counters={names.RECEIVED: 30}))])
            seen.append(await aggregator.minute_series(
                DAY_S, after_s=seen[-1].final_through, now_s=now_s))
            rolled_at_s = newest + MINUTE_S + ROLL_UP_DELAY_S
            assert await RollUp(series).tick(now_s=rolled_at_s) == [newest]
            for _ in range(2):
                seen.append(await aggregator.minute_series(
                    DAY_S, after_s=seen[-1].final_through, now_s=rolled_at_s))
        return [(_received_by_minute(s), s.final_through) for s in seen[1:]]

    revised, rolled_up, nothing_new = asyncio.run(scenario())

    assert revised == ({newest: 2.0}, newest - MINUTE_S)  # still not final
    assert rolled_up == ({newest: 2.0}, newest)  # final now: not asked for again
    assert nothing_new == ({}, newest)
