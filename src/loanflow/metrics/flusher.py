"""`Flusher`: each second, one process's delta goes to the shared series, tagged (second, process).

Ticks are aligned to whole seconds (plus `FLUSH_OFFSET_S`), so every process
writes second s shortly after it ends and readers can trust a second once
`aggregate.SETTLE_S` has passed. A delta whose write failed is kept and sent
again with the same sequence number (the backend applies it at most once);
after `max_unsent` of them the newest are merged, so an outage costs memory
for at most that many seconds, never a count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import time
from collections.abc import Callable, Mapping

from loanflow.metrics import names
from loanflow.metrics.recorder import Recorder
from loanflow.metrics.series_base import MetricsUnavailable, QueueState, SeriesWriter, TaggedDelta
from loanflow.metrics.tally import Tally, merge_into

log = logging.getLogger(__name__)

#: Flush this long after each whole second: the second's events are all in.
FLUSH_OFFSET_S = 0.05
#: Unsent deltas kept through an outage before the newest are merged (15 minutes).
MAX_UNSENT = 900

QueueProbe = Callable[[], QueueState | None]
GaugeProbe = Callable[[], Mapping[str, int]]


def process_id() -> str:
    """Unique per process start: a restarted process (same pid in a container) starts anew."""
    return f"{os.uname().nodename}-{os.getpid()}-{secrets.token_hex(3)}"


class Flusher:
    def __init__(
        self,
        recorder: Recorder,
        series: SeriesWriter,
        *,
        process: str | None = None,
        queue_probe: QueueProbe | None = None,
        gauge_probe: GaugeProbe | None = None,
        clock_s: Callable[[], float] = time.time,
        max_unsent: int = MAX_UNSENT,
    ) -> None:
        if max_unsent < 2:
            raise ValueError(f"expected max_unsent >= 2, got {max_unsent}")
        self.process = process or process_id()
        self._recorder, self._series = recorder, series
        self._queue_probe, self._clock_s = queue_probe, clock_s
        self._gauge_probe = gauge_probe
        self._max_unsent = max_unsent
        self._seq = 0
        self._last_flush_s: float | None = None
        self._unsent: list[TaggedDelta] = []
        #: Flushes that could not be written (for the log and tests).
        self.failed_writes = 0

    @property
    def unsent(self) -> int:
        return len(self._unsent)

    async def flush(self, *, now_s: float | None = None) -> int:
        """Take the recorder's delta and write it with any unsent ones; returns deltas applied.

        The delta is tagged with the second in the middle of the interval it covers.
        """
        now_s = self._clock_s() if now_s is None else now_s
        since_s = now_s - 1.0 if self._last_flush_s is None else self._last_flush_s
        self._last_flush_s = now_s
        tally = self._recorder.take_delta()
        queue = self._queue_probe() if self._queue_probe is not None else None
        if queue is not None:
            tally.gauges[names.QUEUE_DEPTH] = queue.depth
            if queue.lag_s is not None:
                tally.gauges[names.QUEUE_LAG_MS] = round(queue.lag_s * 1000)
        if self._gauge_probe is not None:
            tally.gauges.update(self._gauge_probe())
        if not tally.is_empty():
            self._seq += 1
            second = math.floor((since_s + now_s) / 2)
            self._unsent.append(TaggedDelta(self.process, self._seq, second, tally))
            self._bound_unsent()
        if not self._unsent:
            return 0
        try:
            applied = await self._series.write(self._unsent)
        except MetricsUnavailable as exc:
            self.failed_writes += 1
            log.warning("metrics flush of %d deltas failed, kept for the next: %s",
                        len(self._unsent), exc)
            return 0
        self._unsent = []
        return applied

    async def run(self, stop: asyncio.Event) -> None:
        """Flush at each whole second until `stop`, then once more (nothing is left behind)."""
        while not stop.is_set():
            now_s = self._clock_s()
            wait_s = math.floor(now_s) + 1 + FLUSH_OFFSET_S - now_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait_s)
            await self._flush_logged()
        await self._flush_logged()

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except Exception:
            # A bug must not end the task: the next tick takes the next delta.
            log.exception("metrics flush of process %s failed unexpectedly", self.process)

    def _bound_unsent(self) -> None:
        if len(self._unsent) <= self._max_unsent:
            return
        # Merge the two newest under a fresh seq. Only a write whose reply was lost
        # (it was applied) and an outage longer than max_unsent seconds together
        # could count the older one twice.
        newer, older = self._unsent.pop(), self._unsent.pop()
        self._seq += 1
        merged = merge_into(merge_into(Tally(), older.tally), newer.tally)
        self._unsent.append(TaggedDelta(self.process, self._seq, newer.second, merged))
