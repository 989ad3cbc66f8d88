"""The shared series, on SQLite and on Redis: deltas of many processes add up, totals persist."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from loanflow.backends.sqlite.series import SQLiteSeries
from loanflow.metrics import names
from loanflow.metrics.aggregate import Aggregator
from loanflow.metrics.flusher import Flusher
from loanflow.metrics.recorder import Recorder
from loanflow.metrics.series_base import (
    SECOND_RETENTION_S,
    MetricsSeries,
    MetricsUnavailable,
    QueueState,
    TaggedDelta,
)
from loanflow.metrics.tally import Tally
from tests.metrics.conftest import Backend, opened

#: A fixed "now": second T0 is flushed at T0 + 1.05 and settled by T0 + 1.5.
T0 = 1_800_000_000


def _settled_after(second: int) -> float:
    """A time at which `second` is the newest settled second."""
    return second + 1.6


async def _flush_each(flushers: Sequence[Flusher], second: int) -> None:
    for flusher in flushers:
        await flusher.flush(now_s=second + 1.05)


def test_two_processes_flushed_into_one_backend_aggregate_to_the_sum(backend: Backend) -> None:
    async def scenario() -> None:
        async with opened(backend.series()) as series:
            a, b = Recorder(), Recorder()
            flushers = [Flusher(a, series, process="a"), Flusher(b, series, process="b")]
            a.count(names.RECEIVED, 5)
            a.accepted("web")
            b.count(names.RECEIVED, 7)
            b.accepted("mobile")
            b.answered(422)
            b.count(names.FAILED)
            a.completed("stored", end_to_end_s=0.010)
            b.completed("rejected", end_to_end_s=0.030)
            await _flush_each(flushers, T0)

            summary = await Aggregator(series).summary(10, now_s=_settled_after(T0))
            point = summary.latest_second

        assert point.t == T0
        assert (point.received_per_s, point.stored_per_s, point.rejected_per_s) == (12, 2, 1)
        assert point.errors_per_s == 2  # one 422, one failed attempt
        assert summary.totals["received"] == 12
        assert summary.totals["refused_4xx"] == 1
        assert summary.rates.received_per_s == 1.2
        assert summary.error_rate == pytest.approx(2 / 12, rel=1e-5)
        assert summary.counts.by_channel == {
            "web": 1, "mobile": 1, "broker": 0, "partner_api": 0, "branch": 0, "phone": 0,
        }
        assert summary.counts.by_status == {"stored": 1, "rejected": 1, "dead_lettered": 0}
        assert summary.latency_ms["end_to_end"].max == 30.0

    asyncio.run(scenario())


def test_merged_percentiles_match_numpy_of_the_raw_samples(backend: Backend) -> None:
    rng = random.Random(7)
    samples = {process: [rng.lognormvariate(-4.0, 0.7) for _ in range(4_000)]
               for process in ("a", "b", "c")}

    async def scenario() -> dict[str, float | None]:
        async with opened(backend.series()) as series:
            flushers = []
            for process, values in samples.items():
                recorder = Recorder()
                for value in values:
                    recorder.observe(names.END_TO_END, value)
                flushers.append(Flusher(recorder, series, process=process))
            await _flush_each(flushers, T0)
            summary = await Aggregator(series).summary(10, now_s=_settled_after(T0))
        e2e = summary.latency_ms["end_to_end"]
        return {"p50": e2e.p50, "p95": e2e.p95, "p99": e2e.p99}

    got = asyncio.run(scenario())

    everything = np.array([v for values in samples.values() for v in values]) * 1000
    for name, q in (("p50", 50), ("p95", 95), ("p99", 99)):
        assert got[name] == pytest.approx(float(np.percentile(everything, q)), rel=0.015)


def test_totals_survive_a_restart_of_every_process(backend: Backend) -> None:
    async def run_process(received: int, second: int) -> dict[str, int]:
        async with opened(backend.series()) as series:
            recorder = Recorder()
            recorder.count(names.RECEIVED, received)
            recorder.observe(names.STORE, 0.002)
            await Flusher(recorder, series).flush(now_s=second + 1.05)
            summary = await Aggregator(series).summary(10, now_s=_settled_after(second))
            totals = await Aggregator(series).totals()
        assert totals.histograms[names.STORE].count == summary.totals["received"] // 10
        return summary.totals

    assert asyncio.run(run_process(10, T0))["received"] == 10
    # A new backend instance, Flusher and Aggregator: nothing was kept in memory.
    assert asyncio.run(run_process(10, T0 + 100))["received"] == 20


def test_a_retried_flush_is_applied_once(backend: Backend) -> None:
    async def scenario() -> tuple[int, int, int]:
        async with opened(backend.series()) as series:
            delta = TaggedDelta("p", 1, T0, Tally(counters={names.RECEIVED: 3}))
            first = await series.write([delta])
            again = await series.write([delta])  # as after a reply lost in transit
            totals = await series.read_totals(histograms=False)
        return first, again, totals.counters[names.RECEIVED]

    assert asyncio.run(scenario()) == (1, 0, 3)


def test_series_has_a_point_per_second_for_15_minutes_with_zeros_when_silent(
    backend: Backend,
) -> None:
    async def scenario() -> None:
        async with opened(backend.series()) as series:
            busy = {T0 - 899: 4, T0 - 450: 9, T0: 2}
            for second, received in busy.items():
                # A process that lived only that second: nothing written for the others.
                recorder = Recorder()
                flusher = Flusher(recorder, series, process=f"p{second}",
                                  queue_probe=lambda: QueueState(depth=40, lag_s=1.5))
                recorder.count(names.RECEIVED, received)
                recorder.observe(names.END_TO_END, 0.02)
                await flusher.flush(now_s=second + 1.05)

            result = await Aggregator(series).series(900, now_s=_settled_after(T0))

        assert result.t == list(range(T0 - 899, T0 + 1))
        assert len(result.received_per_s) == 900
        assert {t: r for t, r in zip(result.t, result.received_per_s, strict=True) if r} == busy
        assert result.received_per_s[1] == 0 and result.e2e_p99_ms[1] is None
        assert result.e2e_p99_ms[-1] == pytest.approx(20.0, rel=0.01)
        assert result.queue_depth[-1] == 40 and result.queue_depth[-2] == 0
        assert result.queue_lag_s[-1] == 1.5 and result.queue_lag_s[-2] is None
        assert set(result.p99_ms) == set(names.STAGES)

    asyncio.run(scenario())


def test_series_after_a_second_call_reads_only_the_new_seconds(backend: Backend) -> None:
    async def scenario() -> list[int]:
        async with opened(backend.series()) as series:
            recorder = Recorder()
            flusher = Flusher(recorder, series, process="p")
            aggregator = Aggregator(series)
            recorder.count(names.RECEIVED, 1)
            await flusher.flush(now_s=T0 + 1.05)
            await aggregator.series(60, now_s=_settled_after(T0))
            recorder.count(names.RECEIVED, 2)
            await flusher.flush(now_s=T0 + 2.05)
            later = await aggregator.series(60, now_s=_settled_after(T0 + 1))
        return later.received_per_s[-2:]

    assert asyncio.run(scenario()) == [1, 2]


class _Outage:
    """Delegates to a real series, or fails as an unreachable backend does while `down`."""

    def __init__(self, series: MetricsSeries) -> None:
        self.series, self.down = series, True

    async def write(self, deltas: Sequence[TaggedDelta]) -> int:
        if self.down:
            raise MetricsUnavailable("backend down (test)")
        return await self.series.write(deltas)


def test_deltas_flushed_during_an_outage_are_written_after_it(backend: Backend) -> None:
    async def scenario() -> tuple[int, int, int]:
        async with opened(backend.series()) as series:
            outage = _Outage(series)
            recorder = Recorder()
            flusher = Flusher(recorder, outage, process="p")
            for second in range(T0, T0 + 3):
                recorder.count(names.RECEIVED, 1)
                await flusher.flush(now_s=second + 1.05)
            kept = flusher.unsent
            outage.down = False
            applied = await flusher.flush(now_s=T0 + 4.05)
            totals = await series.read_totals(histograms=False)
        return kept, applied, totals.counters[names.RECEIVED]

    assert asyncio.run(scenario()) == (3, 3, 3)


def test_a_long_outage_merges_the_newest_deltas_and_loses_no_count(backend: Backend) -> None:
    async def scenario() -> tuple[int, int]:
        async with opened(backend.series()) as series:
            outage = _Outage(series)
            recorder = Recorder()
            flusher = Flusher(recorder, outage, process="p", max_unsent=3)
            for second in range(T0, T0 + 10):
                recorder.count(names.RECEIVED, 1)
                await flusher.flush(now_s=second + 1.05)
            kept = flusher.unsent
            outage.down = False
            await flusher.flush(now_s=T0 + 11.05)
            totals = await series.read_totals(histograms=False)
        return kept, totals.counters[names.RECEIVED]

    assert asyncio.run(scenario()) == (3, 10)


def test_a_flush_is_tagged_with_the_second_it_covers() -> None:
    recorder = Recorder()
    written: list[TaggedDelta] = []

    class _Capture:
        async def write(self, deltas: Sequence[TaggedDelta]) -> int:
            written.extend(deltas)
            return len(deltas)

    flusher = Flusher(recorder, _Capture(), process="p")
    for now_s in (T0 + 1.05, T0 + 2.05, T0 + 2.70):  # two ticks, then a final flush
        recorder.count(names.RECEIVED)
        asyncio.run(flusher.flush(now_s=now_s))

    assert [d.second for d in written] == [T0, T0 + 1, T0 + 2]
    assert [d.seq for d in written] == [1, 2, 3]


def test_sqlite_forgets_seconds_older_than_the_retention(tmp_path: Path) -> None:
    async def scenario() -> tuple[set[int], int]:
        async with opened(SQLiteSeries(tmp_path / "m.db")) as series:
            for seq, second in enumerate((T0, T0 + SECOND_RETENTION_S + 1), start=1):
                tally = Tally(counters={names.RECEIVED: 1})
                await series.write([TaggedDelta("p", seq, second, tally)])
            seconds = await series.read_seconds(T0 - 10, T0 + SECOND_RETENTION_S + 10)
            totals = await series.read_totals()
        return set(seconds), totals.counters[names.RECEIVED]

    assert asyncio.run(scenario()) == ({T0 + SECOND_RETENTION_S + 1}, 2)


def test_a_flush_a_little_late_still_counts_in_the_next_summaries(backend: Backend) -> None:
    async def scenario() -> tuple[int, int]:
        async with opened(backend.series()) as series:
            on_time, late = Recorder(), Recorder()
            aggregator = Aggregator(series)
            on_time.count(names.RECEIVED, 5)
            late.count(names.RECEIVED, 7)
            await Flusher(on_time, series, process="a").flush(now_s=T0 + 1.05)
            before = await aggregator.summary(10, now_s=_settled_after(T0))
            # Process b's loop was busy: its flush of second T0 lands a second late.
            await Flusher(late, series, process="b").flush(now_s=T0 + 1.05)
            after = await aggregator.summary(10, now_s=_settled_after(T0 + 1))
        return round(before.rates.received_per_s * 10), round(after.rates.received_per_s * 10)

    assert asyncio.run(scenario()) == (5, 12)


def test_a_summary_is_recomputed_only_when_a_new_second_settles(backend: Backend) -> None:
    reads: list[tuple[int, int]] = []

    class _Counting:
        """The real series, noting which seconds are read."""

        def __init__(self, series: MetricsSeries) -> None:
            self.series = series

        async def read_seconds(self, first_s: int, last_s: int) -> dict[int, Tally]:
            reads.append((first_s, last_s))
            return await self.series.read_seconds(first_s, last_s)

        async def read_totals(self, *, histograms: bool = True) -> Tally:
            return await self.series.read_totals(histograms=histograms)

    async def scenario() -> None:
        async with opened(backend.series()) as series:
            aggregator = Aggregator(_Counting(series))
            await aggregator.summary(10, now_s=_settled_after(T0))
            await aggregator.summary(10, now_s=_settled_after(T0) + 0.5)  # same second
            await aggregator.summary(10, now_s=_settled_after(T0 + 1))

    asyncio.run(scenario())

    # The whole window once, then only the newest seconds (re-read for late flushes).
    assert reads == [(T0 - 9, T0), (T0 - 1, T0 + 1)]
