"""When each consumer last got work: one idle for a while may wait longer between looks.

While work flows a consumer looks again after a short poll (the next batch gathers
meanwhile); once idle, the brokers let it wait longer or block, so an idle service
costs next to no CPU.
"""

from __future__ import annotations

import math
import time

#: Without work this long, a consumer counts as idle.
IDLE_AFTER_S = 1.0


class Activity:
    def __init__(self, idle_after_s: float = IDLE_AFTER_S) -> None:
        self._idle_after_s = idle_after_s
        self._last_work: dict[str, float] = {}

    def worked(self, consumer: str) -> None:
        self._last_work[consumer] = time.monotonic()

    def idle(self, consumer: str) -> bool:
        since = time.monotonic() - self._last_work.get(consumer, -math.inf)
        return since >= self._idle_after_s
