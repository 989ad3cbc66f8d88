"""The highest sustained rate: a saturating probe, then a bisection below it.

A step passes when every request was sent and answered 2xx (0.1% slack),
p99 HTTP latency (from the intended send time) stays under the limit, and so
does p99 end-to-end (received -> stored, read back from the service) when the
service has that stage. Both, because a saturated API queues requests before
they are "received": end-to-end alone would pass an overloaded service.
After a failed step (or the probe) the service is started afresh, so its
backlog cannot spoil the next step; the first failure of a search is tried
once more, so that one burst of a neighbour's load cannot halve the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from benchmarks.harness.measure import Run, final_count, offer, ok_rate, read_summary, wait_drained
from benchmarks.harness.plan import Plan
from benchmarks.harness.service import Service

#: The probe's offered rate: far above what 2 cores can accept.
PROBE_RATE_PER_S = 20_000.0
#: Distinct applications for the probe (its count is large, its content irrelevant).
PROBE_DISTINCT = 2_000
#: Bound on waiting for the warm-up's applications to be stored.
WARM_DRAIN_TIMEOUT_S = 30.0
#: Failed steps of a search tried once more before they count.
CONFIRM_RETRIES = 1
#: Error answers a passing step may have, as a share of those sent.
ERROR_SLACK = 0.001


@dataclasses.dataclass
class SearchResult:
    capacity_per_s: float
    best_per_s: float | None
    best: Run | None
    runs: list[Run]
    verdicts: list[str]


def verdict(summary: dict[str, Any], *, limit_ms: float, end_to_end: bool) -> str:
    """"pass" or why not."""
    if summary["not_sent"] or summary["unanswered"]:
        return f"{summary['not_sent']} not sent, {summary['unanswered']} unanswered"
    if summary["errors"] > ERROR_SLACK * summary["sent"]:
        return f"{summary['errors']} errors {summary['by_status']} {summary['transport_errors']}"
    p99 = summary["latency_ms"]["p99"]
    if p99 is None or p99 >= limit_ms:
        return f"p99 HTTP {p99} ms"
    if end_to_end:
        e2e = summary["end_to_end"]
        e2e_p99 = (e2e.get("latency_ms") or {}).get("p99")
        if not e2e.get("complete") or e2e_p99 is None:
            return f"no complete end-to-end read-back: {e2e}"
        if e2e_p99 >= limit_ms:
            return f"p99 end-to-end {e2e_p99} ms"
    return "pass"


def warm(service: Service, plan: Plan, *, drain: bool = True) -> None:
    """A little load; with `drain`, waited for until stored (so every worker is up)."""
    before = final_count(read_summary(service)) if drain else 0
    run = offer(service, "warm-up", rate_per_s=plan.warm_rate_per_s, duration_s=plan.warm_s,
                end_to_end=False, distinct=500)
    if drain:
        wait_drained(service, accepted=run.summary["by_status"].get("202", 0), before=before,
                     timeout_s=WARM_DRAIN_TIMEOUT_S)


def find_max(start: Callable[[], Service], plan: Plan, *, end_to_end: bool,
             label: str) -> SearchResult:
    """Bisect for the highest passing rate in `plan.steps` steps below the probed ceiling."""
    service = start()
    runs: list[Run] = []
    verdicts: list[str] = []
    try:
        warm(service, plan, drain=end_to_end)
        probe = offer(service, f"{label} probe", rate_per_s=PROBE_RATE_PER_S,
                      duration_s=plan.probe_s, end_to_end=end_to_end, grace_s=1.0,
                      distinct=PROBE_DISTINCT)
        capacity = ok_rate(probe.summary)
        runs.append(probe)
        verdicts.append(f"probe: {capacity:,.0f}/s accepted at saturation")
        lo, hi, best = 0.0, capacity, None
        reuse = False  # the probe left a backlog
        steps, retries, again = 0, CONFIRM_RETRIES, None
        while steps < plan.steps:  # at most steps + CONFIRM_RETRIES runs
            if not reuse:
                service.stop()
                service = start()
                warm(service, plan, drain=end_to_end)
            rate = again if again is not None else round((lo + hi) / 2, -1) or 10.0
            step = offer(service, f"{label} {rate:,.0f}/s", rate_per_s=rate,
                         duration_s=plan.step_s, end_to_end=end_to_end)
            runs.append(step)
            outcome = verdict(step.summary, limit_ms=plan.p99_limit_ms, end_to_end=end_to_end)
            reuse, again = outcome == "pass", None
            if not reuse and retries:
                # A neighbour's burst can fail one step: the first failure is tried
                # again on a fresh service before the search believes it.
                retries, again = retries - 1, rate
                verdicts.append(f"{rate:,.0f}/s: {outcome} (trying again)")
                continue
            verdicts.append(f"{rate:,.0f}/s: {outcome}")
            if reuse:
                lo, best = rate, step
            else:
                hi = rate
            steps += 1
        return SearchResult(capacity, lo if best else None, best, runs, verdicts)
    finally:
        service.stop()
