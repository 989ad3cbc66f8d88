"""Open-loop load at a fixed arrival rate, with no coordinated omission.

Request i is intended at `t0 + i / rate`; its latency runs from that instant to
the answer (see openloop.py). With `processes` K > 1 the schedule is dealt
round-robin over K processes (process k sends i = k, k+K, ...), so together
they hold the same uniform schedule, and their histograms merge exactly.

Bounded in count and time: at most `rate * duration` requests, and everything
still open at `duration + grace` is abandoned and counted as unanswered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import resource
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from loanflow.loadgen.openloop import OpenLoop
from loanflow.loadgen.payloads import BATCH_PATH, MAX_DISTINCT, SUBMIT_PATH, Payloads
from loanflow.loadgen.report import Tally, progress_line, summarize

SUMMARY_PATH = "/v1/metrics/summary"
#: The batch endpoint's item limit (api/batch.py MAX_ITEMS).
MAX_BATCH = 1000
#: The service settles a second's metrics this long after it ends (metrics/aggregate.py).
METRICS_SETTLE_S = 1.5
#: The widest summary window the service serves (api/metrics.py MAX_WINDOW_S).
MAX_WINDOW_S = 300
#: Time between the pool being open and the first intended send.
START_MARGIN_S = 0.05

__all__ = ["BATCH_PATH", "MAX_BATCH", "SUBMIT_PATH", "LoadSpec", "Share", "run", "run_share"]


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


async def run_share(
    spec: LoadSpec, share: Share = Share(), *, start_at: Callable[[], float] | None = None,
    each_second: Callable[[Tally, float], None] | None = None,
) -> Tally:
    """This process's share of the run. `start_at()` gives t0 (perf_counter seconds)
    once the pool is open; default: now."""
    parts = urlsplit(spec.url)
    tls = parts.scheme == "https"
    host, port = parts.hostname or "", parts.port or (443 if tls else 80)
    planned = len(range(share.index, spec.planned, share.count))
    payloads = Payloads(
        host=parts.netloc, key=spec.key,
        distinct=min(spec.distinct, planned * max(spec.batch_size, 1)),
        seed=None if spec.seed is None else spec.seed + share.index,
        invalid_ratio=spec.invalid_ratio, duplicate_ratio=spec.duplicate_ratio,
        batch_size=spec.batch_size, get_path=spec.get_path,
    )
    engine = OpenLoop(
        payloads, host=host, port=port, ssl=ssl.create_default_context() if tls else None,
        connections=max(1, spec.connections // share.count), planned=planned,
        interval_s=share.count / spec.rate_per_s, batch_size=spec.batch_size,
        request_timeout_s=spec.grace_s or math.inf,
        global_index=lambda j: j * share.count + share.index,
    )
    await engine.open()
    t0 = start_at() if start_at is not None else time.perf_counter() + START_MARGIN_S
    cpu_before_s = _cpu_s()
    tally = await engine.run(
        t0=t0, first_s=t0 + share.index / spec.rate_per_s,
        deadline_s=t0 + spec.duration_s + spec.grace_s, each_second=each_second)
    tally.cpu_s, tally.wall_s = _cpu_s() - cpu_before_s, time.perf_counter() - t0
    tally.t0_unix_s = time.time() - tally.wall_s
    return tally


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(spec: LoadSpec, *, on_progress: Callable[[str], None] | None = None
              ) -> dict[str, Any]:
    """Offer the load `spec` describes; the summary (see report.summarize)."""
    started_wall_s = time.time()
    if spec.processes > 1:
        from loanflow.loadgen.processes import run_processes

        tally = await run_processes(spec, on_progress=on_progress)
    else:
        tally = await run_share(spec, each_second=_printer(on_progress) if on_progress else None)
    end_to_end: dict[str, Any] = {"note": "not requested"}
    if spec.get_path is None and spec.end_to_end_wait_s is not None:
        headers = {"Authorization": f"Bearer {spec.key}"}
        async with httpx.AsyncClient(base_url=spec.url, headers=headers, timeout=10) as client:
            end_to_end = await read_end_to_end(
                client, started_wall_s=started_wall_s, ended_wall_s=time.time(),
                wait_s=spec.end_to_end_wait_s)
    target = spec.get_path or (BATCH_PATH if spec.batch_size else SUBMIT_PATH)
    return summarize(tally, target=spec.url.rstrip("/") + target,
                     planned=spec.planned, rate_per_s=spec.rate_per_s,
                     duration_s=spec.duration_s, batch_size=spec.batch_size,
                     end_to_end=end_to_end, connections=max(1, min(spec.connections,
                                                                   spec.planned)),
                     processes=spec.processes)


def _printer(on_progress: Callable[[str], None]) -> Callable[[Tally, float], None]:
    last = [0, 0.0]  # sent, elapsed at the previous line

    def each_second(tally: Tally, elapsed_s: float) -> None:
        rate = (tally.sent - last[0]) / max(elapsed_s - last[1], 1e-9)
        last[:] = [tally.sent, elapsed_s]
        on_progress(progress_line(sent=tally.sent, errors=tally.errors,
                                  p99_ms=tally.http.percentile_ms(99.0),
                                  elapsed_s=elapsed_s, rate_per_s=rate))

    return each_second


class _Second(msgspec.Struct):
    t: int


class _Summary(msgspec.Struct):
    latency_ms: dict[str, dict[str, float | None]]
    latest_second: _Second


async def read_end_to_end(
    client: httpx.AsyncClient, *, started_wall_s: float, ended_wall_s: float, wait_s: float,
) -> dict[str, Any]:
    """The service's end-to-end latency over the run's seconds, once they have settled.

    It covers every submission the service stored in those seconds, not only ours.
    """
    deadline = time.monotonic() + wait_s
    first, last = math.floor(started_wall_s), math.floor(ended_wall_s)
    while True:
        settled = math.floor(time.time() - METRICS_SETTLE_S)
        window_s = min(max(settled - first + 1, 1), MAX_WINDOW_S)
        try:
            response = await client.get(SUMMARY_PATH, params={"window_s": window_s})
        except httpx.TransportError as exc:
            return {"note": f"{SUMMARY_PATH} failed: {type(exc).__name__}"}
        if response.status_code == 403:
            return {"note": "403: the key lacks the read scope"}
        if response.status_code != 200:
            return {"note": f"{SUMMARY_PATH} answered {response.status_code}"}
        summary = msgspec.json.decode(response.content, type=_Summary)
        if summary.latest_second.t >= last or time.monotonic() >= deadline:
            return {"window_s": window_s, "complete": summary.latest_second.t >= last,
                    "latency_ms": summary.latency_ms.get("end_to_end")}
        await asyncio.sleep(0.2)
