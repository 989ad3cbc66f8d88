"""The JSON shapes the dashboard and `GET /v1/metrics/summary` read, and how a Tally becomes one.

Pure functions of merged Tallies: no I/O, no clock. Latencies leave here in
milliseconds (`_ms`), rates per second; a percentile without observations is
null, so a chart shows a gap rather than a false zero.
"""

from __future__ import annotations

import typing

import msgspec

from loanflow.metrics import names
from loanflow.metrics.engagement import Engagement
from loanflow.metrics.series_base import QueueState
from loanflow.metrics.tally import HistogramData, Tally, percentile_s
from loanflow.models import Channel, Status

_EMPTY = HistogramData()
#: Statuses a committed result can have, and the channels of the schema.
FINAL_STATUSES = (Status.STORED.value, Status.REJECTED.value, Status.DEAD_LETTERED.value)
CHANNELS: tuple[str, ...] = typing.get_args(Channel)


class Percentiles(msgspec.Struct, kw_only=True):
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


class Rates(msgspec.Struct, kw_only=True):
    received_per_s: float
    accepted_per_s: float
    stored_per_s: float
    rejected_per_s: float
    failed_per_s: float
    dead_lettered_per_s: float


class QueueView(msgspec.Struct, kw_only=True):
    depth: int | None
    lag_s: float | None


class Counts(msgspec.Struct, kw_only=True):
    """Cumulative counts (since the metrics backend was created), as Prometheus has them."""

    by_status: dict[str, int]
    by_channel: dict[str, int]


class Point(msgspec.Struct, kw_only=True):
    """One second (or minute) of the series, merged across processes.

    A minute's rates are its counts over 60 s, its percentiles those of its merged
    histograms, its queue figures the largest sampled in it."""

    t: int
    received_per_s: float
    stored_per_s: float
    rejected_per_s: float
    errors_per_s: float
    error_rate: float
    e2e_p50_ms: float | None
    e2e_p95_ms: float | None
    e2e_p99_ms: float | None
    p99_ms: dict[str, float | None]
    queue_depth: int
    #: Null when no process sampled the queue that second.
    queue_lag_s: float | None


class Window(msgspec.Struct, kw_only=True):
    """The parts of a summary that only change when a new second settles."""

    rates: Rates
    error_rate: float
    latency_ms: dict[str, Percentiles]
    latest_second: Point
    latest_gauges: dict[str, int]


class Summary(msgspec.Struct, kw_only=True):
    type: str = "snapshot"
    at: str
    window_s: int
    rates: Rates
    error_rate: float
    latency_ms: dict[str, Percentiles]
    queue: QueueView
    counts: Counts
    totals: dict[str, int]
    #: The newest settled second, for charts to append without asking for the series.
    latest_second: Point
    #: Viewers now and sessions/actions today; null until the audit trail was read once.
    engagement: Engagement | None = None


class Series(msgspec.Struct, kw_only=True):
    """Columns of one point per `step_s` (1 or 60), oldest first (uPlot's native layout)."""

    type: str = "series"
    at: str
    step_s: int = 1
    t: list[int]
    received_per_s: list[float]
    stored_per_s: list[float]
    rejected_per_s: list[float]
    errors_per_s: list[float]
    error_rate: list[float]
    e2e_p50_ms: list[float | None]
    e2e_p95_ms: list[float | None]
    e2e_p99_ms: list[float | None]
    p99_ms: dict[str, list[float | None]]
    queue_depth: list[int]
    queue_lag_s: list[float | None]
    #: Per minute: the newest t up to which every point of the range is final; a later one
    #: may still change (its minute is not rolled up yet). Null per second.
    final_through: int | None = None


def window_of(merged: Tally, window_s: int, latest: Point, latest_gauges: dict[str, int]) -> Window:
    c = merged.counters
    return Window(
        rates=Rates(
            received_per_s=_per_s(c, names.RECEIVED, window_s),
            accepted_per_s=_per_s(c, names.ACCEPTED, window_s),
            stored_per_s=_per_s(c, names.STORED, window_s),
            rejected_per_s=_per_s(c, names.REJECTED, window_s),
            failed_per_s=_per_s(c, names.FAILED, window_s),
            dead_lettered_per_s=_per_s(c, names.DEAD_LETTERED, window_s),
        ),
        error_rate=error_rate(merged),
        latency_ms={name: _percentiles(merged.histograms.get(name, _EMPTY))
                    for name in names.HISTOGRAMS},
        latest_second=latest,
        latest_gauges=latest_gauges,
    )


def series_of(points: list[Point], *, at: str, step_s: int = 1,
              final_through: int | None = None) -> Series:
    return Series(
        at=at,
        step_s=step_s,
        final_through=final_through,
        t=[p.t for p in points],
        received_per_s=[p.received_per_s for p in points],
        stored_per_s=[p.stored_per_s for p in points],
        rejected_per_s=[p.rejected_per_s for p in points],
        errors_per_s=[p.errors_per_s for p in points],
        error_rate=[p.error_rate for p in points],
        e2e_p50_ms=[p.e2e_p50_ms for p in points],
        e2e_p95_ms=[p.e2e_p95_ms for p in points],
        e2e_p99_ms=[p.e2e_p99_ms for p in points],
        p99_ms={stage: [p.p99_ms[stage] for p in points] for stage in names.STAGES},
        queue_depth=[p.queue_depth for p in points],
        queue_lag_s=[p.queue_lag_s for p in points],
    )


def point_of(second: int, tally: Tally, *, step_s: int = 1) -> Point:
    """The point of the `step_s` seconds from `second` on, merged into `tally`."""
    c, h = tally.counters, tally.histograms
    e2e = h.get(names.END_TO_END, _EMPTY)
    return Point(
        t=second,
        received_per_s=_rate(c.get(names.RECEIVED, 0), step_s),
        stored_per_s=_rate(c.get(names.STORED, 0), step_s),
        rejected_per_s=_rate(c.get(names.REJECTED, 0), step_s),
        errors_per_s=_rate(_errors(tally), step_s),
        error_rate=error_rate(tally),
        e2e_p50_ms=_ms(percentile_s(e2e, 0.50)),
        e2e_p95_ms=_ms(percentile_s(e2e, 0.95)),
        e2e_p99_ms=_ms(percentile_s(e2e, 0.99)),
        p99_ms={s: _ms(percentile_s(h.get(s, _EMPTY), 0.99)) for s in names.STAGES},
        queue_depth=tally.gauges.get(names.QUEUE_DEPTH, 0),
        queue_lag_s=_seconds(tally.gauges.get(names.QUEUE_LAG_MS)),
    )


def totals_of(totals: Tally) -> dict[str, int]:
    """The summary's `totals`: every plain counter plus the 4xx and 5xx sums."""
    c = totals.counters
    out = {name: c.get(name, 0) for name in names.PLAIN_COUNTERS}
    out[names.REFUSED_4XX] = sum(labels_of(totals, names.REFUSED_4XX).values())
    out[names.UNAVAILABLE_5XX] = sum(labels_of(totals, names.UNAVAILABLE_5XX).values())
    return out


def counts_of(totals: Tally) -> Counts:
    """Every final status and every channel, 0 when none yet, so the dashboard's bars stay put."""
    return Counts(
        by_status={**dict.fromkeys(FINAL_STATUSES, 0), **labels_of(totals, names.BY_STATUS)},
        by_channel={**dict.fromkeys(CHANNELS, 0), **labels_of(totals, names.BY_CHANNEL)},
    )


def queue_view(queue: QueueState | None, latest_gauges: dict[str, int]) -> QueueView:
    if queue is not None:
        return QueueView(depth=queue.depth, lag_s=queue.lag_s)
    # No local sample: the newest second's gauges, as the processes sampled them.
    return QueueView(
        depth=latest_gauges.get(names.QUEUE_DEPTH),
        lag_s=_seconds(latest_gauges.get(names.QUEUE_LAG_MS)),
    )


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def error_rate(tally: Tally) -> float:
    """Refused (4xx), unavailable (5xx) and failed attempts, as a fraction of received."""
    received = tally.counters.get(names.RECEIVED, 0)
    return round(_errors(tally) / received, 6) if received else 0.0


def labels_of(tally: Tally, counter: str) -> dict[str, int]:
    prefix = counter + names.LABEL_SEP
    return {k[len(prefix):]: v for k, v in tally.counters.items() if k.startswith(prefix)}


def _errors(tally: Tally) -> int:
    refused = sum(labels_of(tally, names.REFUSED_4XX).values())
    unavailable = sum(labels_of(tally, names.UNAVAILABLE_5XX).values())
    return refused + unavailable + tally.counters.get(names.FAILED, 0)


def _rate(count: int, step_s: int) -> float:
    # A second's count is its rate: kept an int, as the JSON always had it.
    return count if step_s == 1 else round(count / step_s, 3)


def _per_s(counters: dict[str, int], name: str, window_s: int) -> float:
    return round(counters.get(name, 0) / window_s, 3)


def _percentiles(hist: HistogramData) -> Percentiles:
    return Percentiles(
        p50=_ms(percentile_s(hist, 0.50)),
        p95=_ms(percentile_s(hist, 0.95)),
        p99=_ms(percentile_s(hist, 0.99)),
        max=round(hist.max_ns / 1e6, 3) if hist.count else None,
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)
