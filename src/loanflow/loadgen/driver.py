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
import math
import time
from collections.abc import Callable
from typing import Any

import httpx
import msgspec

from loanflow.loadgen.payloads import BATCH_PATH, SUBMIT_PATH
from loanflow.loadgen.processes import run_processes
from loanflow.loadgen.report import Tally, progress_line, summarize
from loanflow.loadgen.share import run_share
from loanflow.loadgen.spec import MAX_BATCH, LoadSpec, Share

SUMMARY_PATH = "/v1/metrics/summary"
#: The service settles a second's metrics this long after it ends (metrics/aggregate.py).
METRICS_SETTLE_S = 1.5
#: The widest summary window the service serves (api/metrics.py MAX_WINDOW_S).
MAX_WINDOW_S = 300

__all__ = ["BATCH_PATH", "MAX_BATCH", "SUBMIT_PATH", "LoadSpec", "Share", "run", "run_share"]


async def run(spec: LoadSpec, *, on_progress: Callable[[str], None] | None = None
              ) -> dict[str, Any]:
    """Offer the load `spec` describes; the summary (see report.summarize)."""
    started_wall_s = time.time()
    if spec.processes > 1:
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
