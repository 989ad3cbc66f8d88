"""What one load run is (`LoadSpec`, checked on construction) and one process's part of it."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

from loanflow.loadgen.payloads import MAX_DISTINCT

#: The batch endpoint's item limit (api/batch.py MAX_ITEMS).
MAX_BATCH = 1000


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoadSpec:
    """One run. `batch_size` 0 posts single applications; `get_path` GETs that path instead."""

    url: str
    key: str = dataclasses.field(repr=False)
    rate_per_s: float
    duration_s: float
    invalid_ratio: float = 0.0
    duplicate_ratio: float = 0.0
    batch_size: int = 0
    connections: int = 64
    seed: int | None = None
    get_path: str | None = None
    grace_s: float = 10.0
    #: Read `GET /v1/metrics/summary` afterwards; waits up to this long for it to settle.
    end_to_end_wait_s: float | None = 5.0
    #: Generator processes (each with connections / processes of the pool).
    processes: int = 1
    #: Distinct applications generated before the run (see payloads.py).
    distinct: int = MAX_DISTINCT

    def __post_init__(self) -> None:
        checks = (
            ("rate_per_s", self.rate_per_s > 0, "> 0"),
            ("duration_s", self.duration_s > 0, "> 0"),
            ("invalid_ratio", 0 <= self.invalid_ratio <= 1, "in 0..1"),
            ("duplicate_ratio", 0 <= self.duplicate_ratio <= 1, "in 0..1"),
            ("batch_size", 0 <= self.batch_size <= MAX_BATCH, f"in 0..{MAX_BATCH}"),
            ("connections", self.connections >= 1, ">= 1"),
            ("grace_s", self.grace_s >= 0, ">= 0"),
            ("processes", 1 <= self.processes <= self.connections, "in 1..connections"),
            ("distinct", self.distinct >= 1, ">= 1"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"expected {name} {expected}, got {getattr(self, name)!r}")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s)://host[:port] URL, got {self.url!r}")

    @property
    def planned(self) -> int:
        return int(self.rate_per_s * self.duration_s)


@dataclasses.dataclass(frozen=True)
class Share:
    """Process `index` of `count` sends requests index, index + count, ..."""

    index: int = 0
    count: int = 1
