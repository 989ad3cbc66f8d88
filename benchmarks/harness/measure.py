"""One load run against a service, and what the service itself says about it."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from typing import Any

import httpx
import uvloop

from benchmarks.harness.live import with_dashboards
from benchmarks.harness.machine import cpu_ticks, steal_share
from benchmarks.harness.procs import cpu_by_label, cpu_seconds
from benchmarks.harness.service import Service
from loanflow.loadgen.driver import LoadSpec, run

#: How long the end-to-end read-back may wait for the run's seconds to settle.
E2E_WAIT_S = 15.0
#: Bound on waiting for a backlog to drain.
DRAIN_TIMEOUT_S = 120.0
#: Columns of `/v1/metrics/series` kept for the charts.
SERVICE_COLUMNS = ("t", "received_per_s", "stored_per_s", "e2e_p50_ms", "e2e_p95_ms",
                   "e2e_p99_ms", "queue_depth")


@dataclasses.dataclass
class Run:
    """A load run: the generator's summary, the service's per-second series, wall times."""

    label: str
    started_s: float
    ended_s: float
    summary: dict[str, Any]
    service: dict[str, list[Any]] | None = None
    #: Messages each dashboard received (live scenario).
    dashboards: list[int] | None = None
    #: CPU seconds the service and its backends spent during the run, by process kind.
    cpu_s: dict[str, float] = dataclasses.field(default_factory=dict)
    #: Share of the machine's CPU time the hypervisor gave other guests during the run.
    steal: float | None = None

    def cpu_us_per_ok(self) -> float | None:
        """Service CPU (all its processes and backends) per 2xx answer, in µs."""
        ok = sum(n for code, n in self.summary["by_status"].items() if code.startswith("2"))
        items = self.summary.get("batch", {}).get("accepted", ok)
        return round(1e6 * sum(self.cpu_s.values()) / items, 1) if items else None


def offer(
    service: Service, label: str, *, rate_per_s: float, duration_s: float,
    end_to_end: bool = True, dashboards: int = 0, **options: Any,
) -> Run:
    """Offer load to `service` (open loop, see loanflow.loadgen) and collect both views."""
    spec = LoadSpec(url=service.url, key=service.key, rate_per_s=rate_per_s,
                    duration_s=duration_s, end_to_end_wait_s=E2E_WAIT_S if end_to_end else None,
                    **options)
    started_s = time.time()
    cpu_before = cpu_seconds(service.watched_pids())
    ticks_before = cpu_ticks()
    received: list[int] | None = None
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        if dashboards:
            summary, received = runner.run(
                with_dashboards(service.url, service.key, dashboards, run(spec)))
        else:
            summary = runner.run(run(spec))
    ended_s = time.time()
    steal = steal_share(ticks_before, cpu_ticks())
    cpu = cpu_by_label(cpu_before, cpu_seconds(service.watched_pids()))
    series = read_series(service, summary["t0_unix_s"], ended_s) if end_to_end else None
    return Run(label, started_s, ended_s, summary, series, received, cpu, steal)


def ok_rate(summary: dict[str, Any]) -> float:
    """2xx answers per second inside the run's duration (a saturated run's throughput)."""
    duration_s: float = summary["duration_s"]
    ok: int = sum(s["answered"] - s["errors"] for s in summary["series"] if s["t_s"] < duration_s)
    return ok / duration_s


def read_summary(service: Service, window_s: int = 10) -> dict[str, Any]:
    answer = httpx.get(service.url + "/v1/metrics/summary", params={"window_s": window_s},
                       headers={"Authorization": f"Bearer {service.key}"}, timeout=10)
    answer.raise_for_status()
    summary: dict[str, Any] = answer.json()
    return summary


def read_series(service: Service, started_s: float, ended_s: float) -> dict[str, list[Any]]:
    """The service's per-second points of [started_s, ended_s], settled ones only."""
    seconds = min(3600, math.ceil(time.time() - started_s) + 2)
    first = math.floor(started_s)
    answer = httpx.get(service.url + "/v1/metrics/series", params={"seconds": seconds},
                       headers={"Authorization": f"Bearer {service.key}"}, timeout=30)
    answer.raise_for_status()
    series = answer.json()
    keep = [i for i, t in enumerate(series["t"]) if first <= t <= ended_s]
    return {name: [series[name][i] for i in keep] for name in SERVICE_COLUMNS}


def final_count(summary: dict[str, Any]) -> int:
    """Applications with a final status (stored, rejected, dead-lettered) so far."""
    by_status: dict[str, int] = summary["counts"]["by_status"]
    return sum(by_status.get(s, 0) for s in ("stored", "rejected", "dead_lettered"))


def wait_drained(service: Service, *, accepted: int, before: int,
                 timeout_s: float = DRAIN_TIMEOUT_S) -> tuple[float, int]:
    """Wait until `accepted` more applications than `before` reached a final status.

    (wall time when they had, how many did); bounded by `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        done = final_count(read_summary(service)) - before
        if done >= accepted or time.monotonic() > deadline:
            return time.time(), done
        time.sleep(0.25)
