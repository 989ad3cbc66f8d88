"""What a metrics series backend promises. SQLite and Redis pass the same tests.

- `write` applies each TaggedDelta at most once, keyed by (process, seq): a
  retried write (its reply was lost) does not count twice. The deltas of one
  call are applied all together or not at all.
- Per-second data is merged across processes on write (counters and buckets
  add, maxima and gauges take the max) and kept at least `RETENTION_S`.
- Totals (counters and histogram buckets since the backend was created) are
  kept without expiry: they are what Prometheus counters report, and no
  process restart resets them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from loanflow.errors import Unavailable
from loanflow.metrics.tally import Tally

#: How long per-second data is kept: the 15 minutes of history plus a margin.
RETENTION_S = 20 * 60


class MetricsUnavailable(Unavailable):
    """The metrics backend cannot be reached; the Flusher keeps its deltas and retries."""

    type = "metrics-unavailable"


class TaggedDelta(msgspec.Struct, frozen=True):
    """One process's delta for one second; (process, seq) is unique forever."""

    process: str
    seq: int
    second: int
    tally: Tally


class QueueState(msgspec.Struct, frozen=True):
    """The broker's queue as last sampled: depth and, when known, the oldest entry's age."""

    depth: int
    lag_s: float | None = None


class SeriesWriter(Protocol):
    """The part of a series a Flusher needs."""

    async def write(self, deltas: Sequence[TaggedDelta]) -> int: ...


class SeriesReader(Protocol):
    """The part of a series an Aggregator needs."""

    async def read_seconds(self, first_s: int, last_s: int) -> dict[int, Tally]: ...

    async def read_totals(self, *, histograms: bool = True) -> Tally: ...


class MetricsSeries(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def write(self, deltas: Sequence[TaggedDelta]) -> int:
        """Apply the deltas (at most once each); returns how many were new."""
        ...

    async def read_seconds(self, first_s: int, last_s: int) -> dict[int, Tally]:
        """The merged data of each second in [first_s, last_s] that has any."""
        ...

    async def read_totals(self, *, histograms: bool = True) -> Tally:
        """Cumulative counters (and, if asked, histogram buckets/count/sum)."""
        ...
