"""The retry schedule: exponential ceilings with full jitter, capped."""

from __future__ import annotations

import random

from loanflow.pipeline.processor import (
    RETRY_BASE_S,
    RETRY_CAP_S,
    max_retry_delay_s,
    retry_delay_s,
)


def test_each_delay_lies_between_zero_and_its_exponential_ceiling():
    rng = random.Random(3)
    for attempt in range(1, 12):
        delays = [retry_delay_s(attempt, rng) for _ in range(2_000)]
        ceiling = min(RETRY_CAP_S, RETRY_BASE_S * 2**attempt)
        assert all(0 <= d <= ceiling for d in delays)
        # Full jitter spreads over the whole range, not only near the ceiling.
        assert min(delays) < 0.05 * ceiling and max(delays) > 0.95 * ceiling


def test_ceilings_double_then_stop_at_the_cap():
    ceilings = [max_retry_delay_s(a) for a in range(1, 12)]

    assert ceilings[:4] == [1.0, 2.0, 4.0, 8.0]
    assert max(ceilings) == RETRY_CAP_S
    assert ceilings == sorted(ceilings)


def test_total_wait_before_the_dead_letters_is_bounded_with_default_attempts():
    worst = sum(max_retry_delay_s(a) for a in range(1, 5))  # 5 attempts, 4 waits

    assert worst == 15.0
