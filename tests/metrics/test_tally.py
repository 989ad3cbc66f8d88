"""Fixed log buckets: merging is exact, percentiles are within 1 % of the raw samples'."""

from __future__ import annotations

import random

import numpy as np
import pytest

from loanflow.metrics import names
from loanflow.metrics.recorder import Recorder
from loanflow.metrics.tally import (
    HistogramData,
    Tally,
    bucket_midpoint_s,
    bucket_of,
    cumulative_counts,
    flatten,
    merge_into,
    percentile_s,
    unflatten,
)


def _samples(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    # Latency-like: log-normal around 20 ms with a long tail.
    return [rng.lognormvariate(-3.9, 0.8) for _ in range(n)]


def test_a_bucket_midpoint_is_within_one_percent_of_every_value_in_it() -> None:
    for value in (1e-6, 3.3e-4, 0.0127, 1.0, 42.0):
        assert bucket_midpoint_s(bucket_of(value)) == pytest.approx(value, rel=0.01)


def test_merged_histograms_of_two_processes_give_the_percentiles_of_all_samples() -> None:
    first, second = _samples(20_000, seed=1), _samples(15_000, seed=2)
    recorders = [Recorder(), Recorder()]
    for recorder, samples in zip(recorders, (first, second), strict=True):
        for value in samples:
            recorder.observe(names.END_TO_END, value)

    merged = Tally()
    for recorder in recorders:
        merge_into(merged, recorder.take_delta())
    hist = merged.histograms[names.END_TO_END]

    everything = np.array(first + second)
    assert hist.count == len(everything)
    for q in (0.5, 0.95, 0.99):
        expected = float(np.percentile(everything, q * 100, method="inverted_cdf"))
        assert percentile_s(hist, q) == pytest.approx(expected, rel=0.01)
    assert hist.max_ns == int(everything.max() * 1e9)


def test_cumulative_counts_match_the_raw_samples_up_to_one_fine_bucket() -> None:
    samples = _samples(10_000, seed=3)
    recorder = Recorder()
    for value in samples:
        recorder.observe(names.STORE, value)
    hist = recorder.take_delta().histograms[names.STORE]

    bounds = names.PROMETHEUS_BUCKETS_S
    counts = list(cumulative_counts(hist, bounds))

    assert counts == sorted(counts)
    for bound, count in zip(bounds, counts, strict=True):
        low = sum(v <= bound / names.BUCKET_RATIO for v in samples)
        high = sum(v <= bound * names.BUCKET_RATIO for v in samples)
        assert low <= count <= high


def test_flatten_and_unflatten_round_trip() -> None:
    recorder = Recorder()
    recorder.answered(429)
    recorder.observe(names.QUEUE_WAIT, 0.5)
    tally = recorder.take_delta()
    tally.gauges[names.QUEUE_DEPTH] = 7

    added, maxed = flatten(tally)

    assert unflatten([*added, *maxed]) == tally


def test_percentile_of_an_empty_histogram_is_none() -> None:
    assert percentile_s(HistogramData(), 0.99) is None
