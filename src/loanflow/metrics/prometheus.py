"""`GET /metrics`: the cross-process totals in Prometheus text exposition format.

Built with prometheus-client's metric families from the totals the backend
keeps (never from this process's memory), so every API process answers the
same numbers and a restart resets nothing; while that backend is unreachable the
totals are left out, not zeroed (a drop to zero would read as a counter reset).
`loanflow_backend_up` says which backends this process reaches, for alerting
(`alerts.yml`). The histograms' `le` buckets are
sums of the fine log buckets (a fine bucket counts where its midpoint lies,
so an observation within 1 % of a bound may land on either side of it).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from loanflow.metrics import names
from loanflow.metrics.series_base import QueueState
from loanflow.metrics.tally import HistogramData, Tally, cumulative_counts

#: The Content-Type of `render()`'s body. The classic text format 0.0.4, which every
#: Prometheus reads; the library's CONTENT_TYPE_LATEST (1.0.0) needs Prometheus 3.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_P = names.PROMETHEUS_PREFIX
# repr() of these bounds is what Prometheus prints too (0.0001, 1.0, 60.0).
_LE = [repr(float(bound)) for bound in names.PROMETHEUS_BUCKETS_S]


def render(totals: Tally | None, *, queue: QueueState | None,
           backends_up: dict[str, bool] | None = None) -> bytes:
    """The `/metrics` body for these totals (from `Aggregator.totals()`; None: unreachable),
    queue sample and backend reachability (name -> answered)."""
    return generate_latest(_TotalsCollector(totals, queue, backends_up or {}))


class _TotalsCollector(Collector):
    def __init__(self, totals: Tally | None, queue: QueueState | None,
                 backends_up: dict[str, bool]) -> None:
        self._totals, self._queue, self._backends_up = totals, queue, backends_up

    def collect(self) -> Iterator[Metric]:
        if self._backends_up:
            up = GaugeMetricFamily(
                _P + names.PROMETHEUS_BACKEND_UP,
                "1 when this process reaches the backend (broker, store, metrics), else 0.",
                labels=["backend"],
            )
            for backend, answered in sorted(self._backends_up.items()):
                up.add_metric([backend], 1.0 if answered else 0.0)
            yield up
        if self._totals is not None:
            yield from _totals_families(self._totals)
        yield from self._queue_families()

    def _queue_families(self) -> Iterator[Metric]:
        if self._queue is not None:
            yield GaugeMetricFamily(
                _P + names.PROMETHEUS_QUEUE_DEPTH,
                "Applications held by the broker: ready, delayed and in processing.",
                value=self._queue.depth,
            )
            if self._queue.lag_s is not None:
                yield GaugeMetricFamily(
                    _P + names.PROMETHEUS_QUEUE_LAG,
                    "Age in seconds of the oldest application in the queue.",
                    value=self._queue.lag_s,
                )


def _totals_families(totals: Tally) -> Iterator[Metric]:
    counters = totals.counters
    for key, (name, help_text) in names.PROMETHEUS_COUNTERS.items():
        yield CounterMetricFamily(_P + name, help_text, value=counters.get(key, 0))
    for key, (name, label, help_text) in names.PROMETHEUS_LABELLED.items():
        family = CounterMetricFamily(_P + name, help_text, labels=[label])
        prefix = key + names.LABEL_SEP
        for counter, value in sorted(counters.items()):
            if counter.startswith(prefix):
                family.add_metric([counter[len(prefix):]], value)
        yield family
    histograms = totals.histograms
    end_to_end = HistogramMetricFamily(
        _P + names.PROMETHEUS_END_TO_END,
        "Seconds from receipt by the API to the result committed by the store.",
    )
    _add(end_to_end, [], histograms.get(names.END_TO_END, HistogramData()))
    yield end_to_end
    stages = HistogramMetricFamily(
        _P + names.PROMETHEUS_STAGE,
        "Seconds spent in one stage: api, queue_wait, validation, enrichment, store.",
        labels=["stage"],
    )
    for stage in names.STAGES:
        _add(stages, [stage], histograms.get(stage, HistogramData()))
    yield stages


def _add(family: HistogramMetricFamily, labels: list[str], hist: HistogramData) -> None:
    cumulative = list(cumulative_counts(hist, names.PROMETHEUS_BUCKETS_S))
    # +Inf must equal _count; the fine buckets' sum is that count.
    total = sum(hist.buckets.values())
    buckets: list[tuple[str, float]] = [*zip(_LE, cumulative, strict=True), ("+Inf", total)]
    family.add_metric(labels, buckets, sum_value=hist.sum_ns / 1e9)
