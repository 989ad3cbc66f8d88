"""`Recorder`: the per-process tally the hot path writes into, cheap and lock-free.

Used from the event loop only (the API handlers and the processors run there;
the SQLite writer threads never touch it), so a dict increment needs no lock.
Nothing stays here long: the Flusher takes a delta every second and writes it
to the shared series, where all processes' numbers add up.
"""

from __future__ import annotations

from loanflow.metrics import names
from loanflow.metrics.tally import HistogramData, Tally, bucket_of

_PLAIN = frozenset(names.PLAIN_COUNTERS)
_LABELLED = frozenset(names.LABELLED_COUNTERS)


class _Histogram:
    __slots__ = ("buckets", "count", "max_ns", "sum_ns")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.sum_ns = 0
        self.max_ns = 0


class Recorder:
    """Counters, gauges and latency histograms of one process since the last `take_delta()`."""

    def __init__(self) -> None:
        self._counters: dict[str, int] = {}
        self._histograms = {name: _Histogram() for name in names.HISTOGRAMS}

    def count(self, counter: str, n: int = 1, *, label: str | int | None = None) -> None:
        """Add `n` to a counter of `names` (labelled ones need `label`)."""
        if label is None:
            if counter not in _PLAIN:
                raise ValueError(f"expected a counter of names.PLAIN_COUNTERS, got {counter!r}")
            key = counter
        else:
            if counter not in _LABELLED:
                raise ValueError(
                    f"expected a counter of names.LABELLED_COUNTERS, got {counter!r}"
                )
            key = names.labelled(counter, label)
        counters = self._counters
        counters[key] = counters.get(key, 0) + n

    def observe(self, histogram: str, seconds: float) -> None:
        """Record one duration in a histogram of `names.HISTOGRAMS`."""
        try:
            hist = self._histograms[histogram]
        except KeyError:
            raise ValueError(
                f"expected a histogram of names.HISTOGRAMS, got {histogram!r}"
            ) from None
        index = bucket_of(seconds)
        buckets = hist.buckets
        buckets[index] = buckets.get(index, 0) + 1
        hist.count += 1
        duration_ns = int(seconds * 1e9) if seconds > 0 else 0
        hist.sum_ns += duration_ns
        if duration_ns > hist.max_ns:
            hist.max_ns = duration_ns

    def answered(self, status_code: int) -> None:
        """Count an API answer that refused a submission: 4xx refused, 5xx unavailable."""
        if 400 <= status_code < 500:
            self.count(names.REFUSED_4XX, label=status_code)
        elif 500 <= status_code < 600:
            self.count(names.UNAVAILABLE_5XX, label=status_code)
        else:
            raise ValueError(f"expected a 4xx or 5xx status code, got {status_code}")

    def accepted(self, channel: str) -> None:
        """Count a submission made durable (a 202 that was not a replay)."""
        self.count(names.ACCEPTED)
        self.count(names.BY_CHANNEL, label=channel)

    def completed(self, status: str, *, end_to_end_s: float | None = None) -> None:
        """Count a result the store committed, by its final status (and its latency)."""
        self.count(names.STORED)
        self.count(names.BY_STATUS, label=status)
        if status == names.REJECTED:
            self.count(names.REJECTED)
        elif status == names.DEAD_LETTERED:
            self.count(names.DEAD_LETTERED)
        if end_to_end_s is not None:
            self.observe(names.END_TO_END, end_to_end_s)

    def take_delta(self) -> Tally:
        """What was recorded since the last call; starts afresh."""
        counters, self._counters = self._counters, {}
        histograms: dict[str, HistogramData] = {}
        for name, hist in list(self._histograms.items()):
            if hist.count:
                histograms[name] = HistogramData(hist.buckets, hist.count, hist.sum_ns, hist.max_ns)
                self._histograms[name] = _Histogram()
        return Tally(counters=counters, histograms=histograms)
