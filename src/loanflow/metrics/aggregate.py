"""`Aggregator`: what all processes recorded, read back from the shared series.

Only settled seconds are shown: second s is settled once every Flusher has
written it (`SETTLE_S` after it ended), so the newest point never dips.
Settled seconds are cached in this process: a summary reads only the
newest `RECHECK_S` seconds and is recomputed once per second (the hub asks
twice a second), and a series point is computed once the second is older
than that. So a Flusher up to RECHECK_S late (a busy event loop) is still
counted; one later than that (catching up after an outage) reaches the
totals but not a window or point already computed.
A first hour-long series is read in chunks, yielding to the event loop in
between, so a dashboard opened late does not stall the requests of its process.
Per-minute points (`minute_series`) are cached once their minute is rolled up
(they no longer change); a minute not rolled up yet is computed from its
seconds on each call. A per-minute series says up to which minute its points
are final (`final_through`), so a client can then ask only for what is after it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from loanflow.metrics.engagement import EngagementReader
from loanflow.metrics.rollup import due_minutes
from loanflow.metrics.series_base import (
    MINUTE_HISTORY_S,
    MINUTE_RETENTION_S,
    MINUTE_S,
    SECOND_HISTORY_S,
    SECOND_RETENTION_S,
    QueueState,
    SeriesReader,
)
from loanflow.metrics.tally import Tally, merge_into, merged
from loanflow.metrics.views import (
    Point,
    Series,
    Summary,
    Window,
    counts_of,
    point_of,
    queue_view,
    series_of,
    totals_of,
    window_of,
)
from loanflow.models import format_ts

#: A second is read this long after it ended (flush offset plus the write's own time).
SETTLE_S = 0.5
#: Default summary window and series length.
SUMMARY_WINDOW_S = 10
SERIES_SECONDS = 900
#: The newest settled seconds are read again on each recomputation: late flushes count.
RECHECK_S = 3
#: Settled seconds kept whole (for summary windows); larger windows are read each time.
CACHED_SECONDS = 60
#: Seconds read and computed per step of a series backfill, between yields to the loop.
BACKFILL_CHUNK_S = 60
#: Minutes read and computed per step of a per-minute series, between yields.
BACKFILL_CHUNK_MINUTES = 240


class Aggregator:
    def __init__(
        self,
        series: SeriesReader,
        *,
        queue_probe: Callable[[], QueueState | None] | None = None,
        engagement: EngagementReader | None = None,
        clock_s: Callable[[], float] = time.time,
    ) -> None:
        self._series, self._queue_probe, self._clock_s = series, queue_probe, clock_s
        self._engagement = engagement
        self._tallies: dict[int, Tally] = {}
        self._points: dict[int, Point] = {}
        self._minute_points: dict[int, Point] = {}
        self._window: tuple[int, int, Window] | None = None  # (last second, window_s, parts)
        self._backfill = asyncio.Lock()

    def last_settled_second(self, now_s: float | None = None) -> int:
        now_s = self._clock_s() if now_s is None else now_s
        return math.floor(now_s - SETTLE_S) - 1

    async def summary(
        self, window_s: int = SUMMARY_WINDOW_S, *, queue: QueueState | None = None,
        now_s: float | None = None,
    ) -> Summary:
        """Rates, error rate and percentiles over the last `window_s` settled seconds."""
        _check_span("window_s", window_s)
        now_s = self._clock_s() if now_s is None else now_s
        last = self.last_settled_second(now_s)
        if self._window is not None and self._window[:2] == (last, window_s):
            window = self._window[2]
        else:
            window = await self._window_of(last, window_s)
            self._window = (last, window_s, window)
        totals = await self._series.read_totals(histograms=False)
        engagement = (await self._engagement.read(window.latest_gauges)
                      if self._engagement is not None else None)
        return Summary(
            at=format_ts(int(now_s * 1e9)),
            window_s=window_s,
            rates=window.rates,
            error_rate=window.error_rate,
            latency_ms=window.latency_ms,
            queue=queue_view(queue or self.queue(), window.latest_gauges),
            counts=counts_of(totals),
            totals=totals_of(totals),
            latest_second=window.latest_second,
            engagement=engagement,
        )

    async def series(self, seconds: int = SERIES_SECONDS, *, now_s: float | None = None) -> Series:
        """One point per second for the last `seconds` settled seconds (zeros where silent)."""
        _check_span("seconds", seconds)
        now_s = self._clock_s() if now_s is None else now_s
        last = self.last_settled_second(now_s)
        first = last - seconds + 1
        async with self._backfill:  # two dashboards opening at once compute it once
            missing = [s for s in range(first, last + 1)
                       if s not in self._points or s > last - RECHECK_S]
            for start in range(0, len(missing), BACKFILL_CHUNK_S):
                chunk = missing[start:start + BACKFILL_CHUNK_S]
                read = await self._series.read_seconds(chunk[0], chunk[-1])
                for s in chunk:
                    self._points[s] = point_of(s, read.get(s, Tally()))
                await asyncio.sleep(0)  # let requests in between chunks
        for s in [s for s in self._points if s <= last - SECOND_RETENTION_S]:
            del self._points[s]  # older than any series anyone may ask for
        return series_of([self._points[s] for s in range(first, last + 1)],
                         at=format_ts(int(now_s * 1e9)))

    async def minute_series(
        self, span_s: int, *, after_s: int | None = None, now_s: float | None = None,
    ) -> Series:
        """One point per minute for the last `span_s` seconds of whole settled minutes; with
        `after_s`, only those after it. Its `final_through` speaks for the whole range."""
        if not (MINUTE_S <= span_s <= MINUTE_HISTORY_S and span_s % MINUTE_S == 0):
            raise ValueError(f"expected a multiple of {MINUTE_S} up to {MINUTE_HISTORY_S}, "
                             f"got {span_s}")
        now_s = self._clock_s() if now_s is None else now_s
        last = self.last_settled_second(now_s)
        newest = (last + 1) // MINUTE_S * MINUTE_S - MINUTE_S  # all its seconds settled
        minutes = range(newest - span_s + MINUTE_S, newest + 1, MINUTE_S)
        # A minute the roll-up can no longer reach never changes again: absent, it had no
        # traffic (or no process ran to roll it up). Asked of due_minutes itself, so that
        # the two cannot disagree.
        final_before = due_minutes(now_s)[0]
        fresh: dict[int, Point] = {}
        async with self._backfill:
            missing = [m for m in minutes if m not in self._minute_points]
            for start in range(0, len(missing), BACKFILL_CHUNK_MINUTES):
                chunk = missing[start:start + BACKFILL_CHUNK_MINUTES]
                read = await self._series.read_minutes(chunk[0], chunk[-1])
                for m in chunk:
                    tally = read.get(m)
                    if tally is not None or m < final_before:
                        self._minute_points[m] = point_of(m, tally or Tally(), step_s=MINUTE_S)
                await asyncio.sleep(0)
            unrolled = [m for m in minutes if m not in self._minute_points]
            if unrolled:
                read = await self._series.read_seconds(unrolled[0], unrolled[-1] + MINUTE_S - 1)
                for m in unrolled:
                    tally = merged(read[s] for s in range(m, m + MINUTE_S) if s in read)
                    fresh[m] = point_of(m, tally, step_s=MINUTE_S)
        for m in [m for m in self._minute_points if m <= last - MINUTE_RETENTION_S]:
            del self._minute_points[m]
        # Only a minute computed from its seconds may still change (a late flush, then its
        # roll-up): the answer says where that starts, as a margin clients re-ask would have
        # to span the roll-up's hour-long reach. The whole range is computed either way (its
        # final points are cached), so an answer after `after_s` is the full one's tail.
        final_through = min(fresh, default=newest + MINUTE_S) - MINUTE_S
        shown = minutes if after_s is None else [m for m in minutes if m > after_s]
        return series_of([fresh.get(m) or self._minute_points[m] for m in shown],
                         at=format_ts(int(now_s * 1e9)), step_s=MINUTE_S,
                         final_through=final_through)

    async def window_tally(self, window_s: int, *, now_s: float | None = None) -> Tally:
        """The last `window_s` settled seconds merged into one tally (for alerting)."""
        _check_span("window_s", window_s)
        last = self.last_settled_second(now_s)
        merged = Tally()
        for tally in (await self._series.read_seconds(last - window_s + 1, last)).values():
            merge_into(merged, tally)
        return merged

    async def totals(self) -> Tally:
        """Cumulative counters and histograms of all processes (for Prometheus)."""
        return await self._series.read_totals(histograms=True)

    def queue(self) -> QueueState | None:
        return self._queue_probe() if self._queue_probe is not None else None

    async def _window_of(self, last: int, window_s: int) -> Window:
        first = last - window_s + 1
        if window_s > CACHED_SECONDS:
            tallies = await self._series.read_seconds(first, last)
        else:
            missing = [s for s in range(first, last + 1)
                       if s not in self._tallies or s > last - RECHECK_S]
            if missing:
                read = await self._series.read_seconds(missing[0], missing[-1])
                for s in missing:
                    self._tallies[s] = tally = read.get(s, Tally())
                    self._points[s] = point_of(s, tally)
            for s in [s for s in self._tallies if s <= last - CACHED_SECONDS]:
                del self._tallies[s]
            tallies = {s: self._tallies[s] for s in range(first, last + 1)}
        merged = Tally()
        for tally in tallies.values():
            merge_into(merged, tally)
        latest = tallies.get(last, Tally())
        return window_of(merged, window_s, point_of(last, latest), latest.gauges)


def _check_span(name: str, value: int) -> None:
    if not 1 <= value <= SECOND_HISTORY_S:
        raise ValueError(f"expected 1 <= {name} <= {SECOND_HISTORY_S}, got {value}")
