"""`RollUp`: once a minute, the finished minutes of the last hour become per-minute tallies.

Every process runs one; the series lets exactly one of them roll up each
minute (series_base). A minute is rolled up `ROLL_UP_DELAY_S` after it ended,
when its seconds have settled and flushes a little late are in. Each tick
looks back over the whole per-second history, so a minute missed (every
process was busy, stopped, or the backend was down) is caught up while its
seconds are still kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from loanflow.metrics.series_base import MINUTE_S, SECOND_HISTORY_S, MetricsUnavailable

log = logging.getLogger(__name__)

#: Roll a minute up this long after it ended (its last flush is due 1.05 s after it).
ROLL_UP_DELAY_S = 10


class RollsUp(Protocol):
    async def roll_up(self, minutes: Sequence[int]) -> list[int]: ...


def due_minutes(now_s: float) -> list[int]:
    """The minutes (first seconds) of the per-second history that may be rolled up at `now_s`."""
    newest = math.floor((now_s - ROLL_UP_DELAY_S) / MINUTE_S) * MINUTE_S - MINUTE_S
    oldest = newest - SECOND_HISTORY_S + MINUTE_S
    return list(range(oldest, newest + 1, MINUTE_S))


class RollUp:
    def __init__(self, series: RollsUp, *, clock_s: Callable[[], float] = time.time) -> None:
        self._series, self._clock_s = series, clock_s

    async def tick(self, *, now_s: float | None = None) -> list[int]:
        """Roll up what is due and not done; returns the minutes this process rolled up."""
        now_s = self._clock_s() if now_s is None else now_s
        return await self._series.roll_up(due_minutes(now_s))

    async def run(self, stop: asyncio.Event) -> None:
        """Tick now (catch up after a start), then once a minute until `stop`."""
        while not stop.is_set():
            await self._tick_logged()
            now_s = self._clock_s()
            next_s = math.floor(now_s / MINUTE_S) * MINUTE_S + MINUTE_S + ROLL_UP_DELAY_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), next_s - now_s)

    async def _tick_logged(self) -> None:
        try:
            await self.tick()
        except MetricsUnavailable as exc:
            log.warning("metrics roll-up skipped, the next tick catches up: %s", exc)
        except Exception:
            # A bug must not end the task: the next tick tries the same minutes again.
            log.exception("metrics roll-up failed unexpectedly")
