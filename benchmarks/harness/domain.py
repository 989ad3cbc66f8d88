"""Benchmark of the domain alone: rules, enrichment and scorecard, no I/O.

    python -m benchmarks.harness.domain          # prints the figures as JSON

The applications are generated and decoded once; only `assess()` is timed, over the
whole batch, `repeats` times. The target is under 50 ms per 1,000 applications.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import statistics
import time

import msgspec

from loanflow.domain import rules
from loanflow.domain.assess import assess
from loanflow.domain.product import load_product
from loanflow.loadgen.synthetic import generate
from loanflow.models import Application

#: The generation time and decision date: fixed, so every run assesses the same batch.
_NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)


def measure_domain(n: int = 1000, repeats: int = 20, seed: int = 1) -> dict[str, float]:
    """Time assess() over n generated applications, `repeats` times.

    Returns n, the best and the median batch time in ms, and the time per application
    in µs (from the median, what a processor sees; the best is the machine's floor).
    """
    if n < 1 or repeats < 1:
        raise ValueError(f"expected n >= 1 and repeats >= 1, got {n}, {repeats}")
    rng = random.Random(seed)
    batch = [msgspec.convert(generate(rng, now=_NOW), Application) for _ in range(n)]
    product, today = load_product(), _NOW.date()
    rules.load_tables()  # loaded at processor start too; not part of any batch
    for application in batch[:10]:  # the first calls fill lazy caches
        assess(application, product=product, today=today)
    timings_ms: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        for application in batch:
            assess(application, product=product, today=today)
        timings_ms.append((time.perf_counter_ns() - started) / 1e6)
    median_ms = statistics.median(timings_ms)
    return {
        "n": float(n),
        "best_ms": round(min(timings_ms), 3),
        "median_ms": round(median_ms, 3),
        "per_application_us": round(median_ms * 1000 / n, 2),
    }


if __name__ == "__main__":
    print(json.dumps(measure_domain()))
