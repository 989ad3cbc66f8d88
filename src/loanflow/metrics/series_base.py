"""What a metrics series backend promises. SQLite and Redis pass the same tests.

- `write` applies each TaggedDelta at most once, keyed by (process, seq): a
  retried write (its reply was lost) does not count twice. The deltas of one
  call are applied all together or not at all.
- Per-second data is merged across processes on write (counters and buckets
  add, maxima and gauges take the max) and kept at least `SECOND_RETENTION_S`.
- `roll_up` merges each finished minute's seconds into one per-minute tally,
  kept at least `MINUTE_RETENTION_S`, and packs those seconds compactly (a
  minute is rolled up once, by whichever process gets there first). A flush
  later than the roll-up of its minute still counts in its second and the
  totals, not in the minute.
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

#: Per-second history served (the dashboard's 1 h range) and kept (plus a margin).
SECOND_HISTORY_S = 60 * 60
SECOND_RETENTION_S = SECOND_HISTORY_S + 5 * 60
#: One per-minute point covers this many seconds, from a multiple of it.
MINUTE_S = 60
#: Per-minute history served (the 7 d range) and kept (plus a margin).
MINUTE_HISTORY_S = 7 * 24 * 60 * 60
MINUTE_RETENTION_S = MINUTE_HISTORY_S + 60 * 60
#: How long an applied flush's (process, seq) is remembered: longer than a Flusher
#: keeps retrying one (flusher.MAX_UNSENT seconds).
FLUSH_DEDUP_S = 20 * 60


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

    async def read_minutes(self, first_s: int, last_s: int) -> dict[int, Tally]: ...


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

    async def roll_up(self, minutes: Sequence[int]) -> list[int]:
        """Roll up each minute (its first second) not rolled up yet; returns those this call did.

        A caller passes only finished minutes whose seconds have settled."""
        ...

    async def read_minutes(self, first_s: int, last_s: int) -> dict[int, Tally]:
        """The rolled-up minutes starting in [first_s, last_s], by their first second."""
        ...
