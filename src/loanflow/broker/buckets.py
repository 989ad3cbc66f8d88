"""Token buckets held in one process: a steady rate, a burst on top."""

from __future__ import annotations


class TokenBuckets:
    """Bucket name -> (tokens, last refill time); each call gives its rate and burst."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, bucket: str, cost: float, *, rate_per_s: float, burst: float,
             now_s: float) -> float:
        """Take `cost` tokens and return 0, or take none and return the seconds until
        the bucket holds them. A rate of 0 means no limit."""
        if rate_per_s == 0:
            return 0.0
        tokens, last = self._buckets.get(bucket, (burst, now_s))
        tokens = min(burst, tokens + max(0.0, now_s - last) * rate_per_s)
        if tokens < cost:
            self._buckets[bucket] = (tokens, now_s)
            return (cost - tokens) / rate_per_s
        self._buckets[bucket] = (tokens - cost, now_s)
        return 0.0
