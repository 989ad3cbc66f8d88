"""What is counted, in a form that adds up: per process, per second, across processes.

Histograms use fixed log-scale buckets (ratio `names.BUCKET_RATIO`), not
HdrHistogram: bucket counts of different processes just add, so the backends
merge them on write (SQL upsert, Redis HINCRBY) without decoding anything,
the Prometheus buckets are sums of them, and no dependency is needed.
Percentiles are within 1 % (see `names.BUCKET_RATIO`).

`flatten`/`unflatten` turn a Tally into `field -> int` pairs (`c:received`,
`b:end_to_end:-230`, ...), the layout both backends merge fresh seconds in;
`pack`/`unpack` are the compact msgpack form of settled seconds and minutes
(about 4 bytes a bucket, against ~50 as a Redis hash field).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import msgspec

from loanflow.metrics import names

_LOG_RATIO = math.log(names.BUCKET_RATIO)
_INV_LOG_RATIO = 1.0 / _LOG_RATIO
_MIN_BUCKET = math.floor(math.log(names.MIN_DURATION_S) * _INV_LOG_RATIO)
_MAXED = (names.FIELD_MAX_NS, names.FIELD_GAUGE)


class HistogramData(msgspec.Struct):
    """Bucket counts of one histogram (bucket index -> observations)."""

    buckets: dict[int, int] = msgspec.field(default_factory=dict)
    count: int = 0
    sum_ns: int = 0
    max_ns: int = 0


class Tally(msgspec.Struct):
    """Counters and histograms that add; gauges that merge by max."""

    counters: dict[str, int] = msgspec.field(default_factory=dict)
    histograms: dict[str, HistogramData] = msgspec.field(default_factory=dict)
    gauges: dict[str, int] = msgspec.field(default_factory=dict)

    def is_empty(self) -> bool:
        return not (self.counters or self.histograms or self.gauges)


_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder(Tally).decode


def pack(tally: Tally) -> bytes:
    """The msgpack form a settled second or a minute is stored in."""
    return _pack(tally)


def unpack(data: bytes) -> Tally:
    return _unpack(data)


def merged(tallies: Iterable[Tally]) -> Tally:
    """One new Tally of all `tallies` (counters and buckets add, maxima take the max)."""
    total = Tally()
    for tally in tallies:
        merge_into(total, tally)
    return total


def bucket_of(seconds: float) -> int:
    """The bucket index of a duration; tiny or negative durations share the lowest."""
    if seconds <= names.MIN_DURATION_S:
        return _MIN_BUCKET
    return math.floor(math.log(seconds) * _INV_LOG_RATIO)


def bucket_midpoint_s(index: int) -> float:
    """The geometric midpoint of a bucket: at most 0.995 % from any value in it."""
    return math.exp((index + 0.5) * _LOG_RATIO)


def merge_into(total: Tally, other: Tally) -> Tally:
    """Add `other` to `total` (counters and buckets add, maxima and gauges take the max)."""
    for key, value in other.counters.items():
        total.counters[key] = total.counters.get(key, 0) + value
    for name, hist in other.histograms.items():
        into = total.histograms.get(name)
        if into is None:
            into = total.histograms[name] = HistogramData()
        for index, count in hist.buckets.items():
            into.buckets[index] = into.buckets.get(index, 0) + count
        into.count += hist.count
        into.sum_ns += hist.sum_ns
        into.max_ns = max(into.max_ns, hist.max_ns)
    for key, value in other.gauges.items():
        total.gauges[key] = max(total.gauges.get(key, value), value)
    return total


def percentile_s(hist: HistogramData, q: float) -> float | None:
    """The q-quantile (0 < q <= 1) in seconds, None without observations.

    Nearest rank (the smallest value with at least q of the observations at or
    below it), reported as its bucket's midpoint, capped at the observed maximum.
    """
    if not 0 < q <= 1:
        raise ValueError(f"expected 0 < q <= 1, got {q}")
    total = sum(hist.buckets.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for index in sorted(hist.buckets):
        seen += hist.buckets[index]
        if seen >= rank:
            value = bucket_midpoint_s(index)
            return min(value, hist.max_ns / 1e9) if hist.max_ns else value
    raise AssertionError("unreachable: rank <= total")


def cumulative_counts(hist: HistogramData, bounds_s: Iterable[float]) -> Iterator[int]:
    """Observations at or below each bound (a bucket counts where its midpoint lies)."""
    ordered = sorted(hist.buckets.items())
    seen, i = 0, 0
    for bound in bounds_s:
        while i < len(ordered) and bucket_midpoint_s(ordered[i][0]) <= bound:
            seen += ordered[i][1]
            i += 1
        yield seen


def flatten(tally: Tally) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(fields that add, fields merged by max) of a Tally."""
    added = [(names.FIELD_COUNTER + key, value) for key, value in tally.counters.items()]
    maxed = [(names.FIELD_GAUGE + key, value) for key, value in tally.gauges.items()]
    for name, hist in tally.histograms.items():
        added.extend(
            (f"{names.FIELD_BUCKET}{name}:{index}", count) for index, count in hist.buckets.items()
        )
        added.append((names.FIELD_COUNT + name, hist.count))
        added.append((names.FIELD_SUM_NS + name, hist.sum_ns))
        maxed.append((names.FIELD_MAX_NS + name, hist.max_ns))
    return added, maxed


def unflatten(fields: Iterable[tuple[str, int]]) -> Tally:
    """The Tally of stored fields; unknown prefixes (a newer version's) are skipped."""
    tally = Tally()
    # Buckets of one histogram usually come together (sorted fields): look it up once.
    bucket_name, buckets = "", None
    for field, value in fields:
        prefix, rest = field[:2], field[2:]
        if prefix == names.FIELD_BUCKET:
            name, _, index = rest.rpartition(":")
            if buckets is None or name != bucket_name:
                bucket_name, buckets = name, _hist(tally, name).buckets
            buckets[int(index)] = value
        elif prefix == names.FIELD_COUNTER:
            tally.counters[rest] = value
        elif prefix == names.FIELD_GAUGE:
            tally.gauges[rest] = value
        elif prefix == names.FIELD_COUNT:
            _hist(tally, rest).count = value
        elif prefix == names.FIELD_SUM_NS:
            _hist(tally, rest).sum_ns = value
        elif prefix == names.FIELD_MAX_NS:
            _hist(tally, rest).max_ns = value
    return tally


def is_maxed(field: str) -> bool:
    """Whether a stored field merges by max (else it adds)."""
    return field[:2] in _MAXED


def _hist(tally: Tally, name: str) -> HistogramData:
    hist = tally.histograms.get(name)
    if hist is None:
        hist = tally.histograms[name] = HistogramData()
    return hist
