"""The standard scenarios of issue #10, each against freshly started services.

Each scenario function takes the `Bench` context and returns a `Result`:
figures against their targets, the load runs behind them (for the charts),
and notes. A scenario reads what earlier ones found (the profile runs at the
sustained rates the searches found; the naive ratio needs production-max).
The soak and the profiles are in soak.py.
"""

from __future__ import annotations

import importlib
import importlib.util
import statistics
import subprocess
import sys
from collections.abc import Callable

from benchmarks.harness.context import Bench, Figure, Result, at_most, cores, p99_ms, under
from benchmarks.harness.measure import final_count, offer, ok_rate, read_summary, wait_drained
from benchmarks.harness.roundrobin import references
from benchmarks.harness.search import PROBE_DISTINCT, PROBE_RATE_PER_S, find_max, warm
from benchmarks.harness.service import Service, naive_service
from benchmarks.harness.soak import profile, soak

#: The load generator must offer this on one core (issue #10).
OFFER_TARGET_PER_S = 10_000.0
#: A 20-dashboard throughput may be at most this much below none (issue #10).
LIVE_DROP_LIMIT = 0.05
#: loanflow's production rate over the naive baseline's (issue #10).
NAIVE_RATIO_TARGET = 4.0
#: assess() time per 1,000 applications (the domain benchmark's own target).
DOMAIN_LIMIT_MS = 50.0


def loadgen_ceiling(bench: Bench) -> Result:
    """The generator alone, against a sink answering a canned 202 in another process."""
    plan, result = bench.plan, Result("loadgen-ceiling", "Load generator against a sink")
    sink_proc = subprocess.Popen([sys.executable, "-m", "loanflow.loadgen.sink", "--port", "0"],
                                 stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert sink_proc.stdout is not None
        port = int(sink_proc.stdout.readline().split()[-1])
        sink = Service("sink", f"http://127.0.0.1:{port}", "lf_sink", sink_proc,
                       bench.work_dir / "sink.log")
        held = offer(sink, f"{plan.ceiling_rate_per_s:,.0f}/s", end_to_end=False,
                     rate_per_s=plan.ceiling_rate_per_s, duration_s=plan.ceiling_s)
        top = offer(sink, "saturated", end_to_end=False, rate_per_s=10 * OFFER_TARGET_PER_S,
                    duration_s=plan.ceiling_s, grace_s=1.0, distinct=PROBE_DISTINCT)
    finally:
        sink_proc.terminate()
        sink_proc.wait(timeout=10)
    s = held.summary
    all_answered = s["by_status"] == {"202": s["planned"]}
    result.runs += [held, top]
    result.figures += [
        Figure("offered and answered", s["achieved_rate_per_s"], "req/s",
               f">= {OFFER_TARGET_PER_S:,.0f}/s, all answered",
               all_answered and s["achieved_rate_per_s"] >= 0.99 * plan.ceiling_rate_per_s
               and plan.ceiling_rate_per_s >= OFFER_TARGET_PER_S),
        Figure("send lag p99", s["send_lag_ms"]["p99"], "ms"),
        Figure("generator CPU while offering", s["generator_cpu_cores"], "cores", "<= 1",
               under(s["generator_cpu_cores"], 1.0001)),
        Figure("one-process ceiling (offered 100,000/s; the sink has the other core)",
               round(ok_rate(top.summary)), "req/s"),
        Figure("generator CPU at that ceiling", top.summary["generator_cpu_cores"], "cores"),
    ]
    return result


def _search(bench: Bench, name: str, title: str, start: Callable[[], Service], *,
            end_to_end: bool) -> Result:
    found = find_max(start, bench.plan, end_to_end=end_to_end, label=name)
    bench.found[name] = found
    result = Result(name, title, runs=found.runs, notes=found.verdicts)
    limit = f"p99 HTTP{' and end-to-end' if end_to_end else ''} < {bench.plan.p99_limit_ms:.0f} ms"
    result.figures.append(Figure("highest sustained rate", found.best_per_s, "req/s", limit,
                                 found.best_per_s is not None))
    result.figures.append(Figure("accept ceiling (saturating probe)",
                                 round(found.capacity_per_s), "req/s"))
    if found.best is not None:
        best = found.best
        result.figures.append(Figure("p99 HTTP at that rate", p99_ms(best.summary), "ms"))
        if end_to_end:
            result.figures.append(Figure("p99 end-to-end at that rate",
                                         p99_ms(best.summary, end_to_end=True), "ms"))
        result.figures.append(Figure("CPU per accepted request at that rate (service and"
                                     " backends)", best.cpu_us_per_ok(), "µs"))
        result.notes.append(f"CPU at {found.best_per_s:,.0f}/s, cores by process: "
                            + cores(best))
    return result


def embedded_max(bench: Bench) -> Result:
    return _search(bench, "embedded-max", "Embedded mode: highest sustained rate",
                   bench.embedded, end_to_end=True)


def production_max(bench: Bench) -> Result:
    count = bench.plan.processors
    workers = f"{count} worker process" + ("es" if count > 1 else "")
    title = (f"Production mode ({bench.plan.api_workers} API processes, {workers}):"
             " highest sustained rate")
    return _search(bench, "production-max", title, bench.production_service, end_to_end=True)


def naive_max(bench: Bench) -> Result:
    title = "Naive baseline (FastAPI, INSERT + XADD per request, 2 workers)"
    if importlib.util.find_spec("fastapi") is None:
        return Result("naive-max", title, notes=["skipped: fastapi is not installed"
                                                 " (pip install -e '.[bench]')"])
    result = _search(bench, "naive-max", title, lambda: naive_service(
        bench.naive_dir, bench.work_dir, production=bench.production(),
        workers=bench.plan.api_workers), end_to_end=False)
    ours, naive = bench.found.get("production-max"), bench.found["naive-max"]
    ratio = None
    if ours is not None and ours.best_per_s and naive.best_per_s:
        ratio = round(ours.best_per_s / naive.best_per_s, 2)
    result.figures.append(Figure("loanflow production / naive", ratio, "x",
                                 f">= {NAIVE_RATIO_TARGET:.0f}x",
                                 ratio is not None and ratio >= NAIVE_RATIO_TARGET))
    return result


def steady(bench: Bench) -> Result:
    plan = bench.plan
    rate = plan.steady_rate_per_s
    result = Result("steady", f"Latency at a steady {rate:,.0f}/s for {plan.steady_s:.0f} s")
    for mode, start in (("embedded", bench.embedded), ("production", bench.production_service)):
        service = start()
        try:
            warm(service, plan)
            run = offer(service, mode, rate_per_s=rate, duration_s=plan.steady_s)
        finally:
            service.stop()
        result.runs.append(run)
        result.notes.append(f"{mode}: CPU, cores by process: {cores(run)}")
        for label, value, limit_ms in (
            ("HTTP", p99_ms(run.summary), plan.steady_http_p99_ms),
            ("end-to-end", p99_ms(run.summary, end_to_end=True), plan.steady_e2e_p99_ms),
        ):
            result.figures.append(Figure(f"{mode}: p99 {label}", value, "ms",
                                         f"<= {limit_ms:g} ms", at_most(value, limit_ms)))
    return result


def batch(bench: Bench) -> Result:
    plan = bench.plan
    result = Result("batch", f"Batch endpoint, {plan.batch_size:,} applications per request")
    offered = plan.batch_rate_per_s * plan.batch_size
    for mode, start in (("embedded", bench.embedded), ("production", bench.production_service)):
        service = start()
        try:
            warm(service, plan)
            before = final_count(read_summary(service))
            run = offer(service, mode, rate_per_s=plan.batch_rate_per_s,
                        duration_s=plan.batch_s, batch_size=plan.batch_size, connections=4,
                        grace_s=60.0)
            accepted = run.summary["batch"]["accepted"]
            drained_s, done = wait_drained(service, accepted=accepted, before=before)
        finally:
            service.stop()
        result.runs.append(run)
        result.notes.append(f"{mode}: CPU while sending, cores by process: {cores(run)}")
        result.figures += [
            # Bounded by the offer (the stored rate is the bottleneck, not acceptance).
            Figure(f"{mode}: accepted (offered {offered:,.0f}/s)",
                   round(accepted / run.summary["wall_s"]), "apps/s"),
            Figure(f"{mode}: stored (accepted -> final status)",
                   round(done / (drained_s - run.started_s)), "apps/s"),
        ]
        if done < accepted:
            result.notes.append(f"{mode}: only {done} of {accepted} reached a final status"
                                " within the drain timeout")
    return result


def live(bench: Bench) -> Result:
    plan, n = bench.plan, bench.plan.live_dashboards
    result = Result("live", f"Throughput with {n} dashboards on WS /v1/live vs none (embedded,"
                    " saturated)")
    rates: dict[int, list[float]] = {0: [], n: []}
    fed: list[float] = []
    for _ in range(plan.live_rounds):
        for count in (0, n):
            service = bench.embedded()
            try:
                warm(service, plan)
                run = offer(service, f"{count} dashboards", rate_per_s=PROBE_RATE_PER_S,
                            duration_s=plan.live_s, end_to_end=False, grace_s=1.0,
                            distinct=PROBE_DISTINCT, dashboards=count)
            finally:
                service.stop()
            result.runs.append(run)
            rates[count].append(ok_rate(run.summary))
            fed += [m / (run.ended_s - run.started_s) for m in run.dashboards or []]
    none, some = statistics.mean(rates[0]), statistics.mean(rates[n])
    drop = round((none - some) / none, 4) if none else None
    result.figures += [
        Figure("throughput, no dashboard", round(none), "req/s"),
        Figure(f"throughput, {n} dashboards", round(some), "req/s"),
        Figure("drop", None if drop is None else round(100 * drop, 1), "%",
               f"< {100 * LIVE_DROP_LIMIT:.0f}%", drop is not None and drop < LIVE_DROP_LIMIT),
        Figure("messages per dashboard per second (slowest)", round(min(fed), 2) if fed else None,
               "msg/s", ">= 2", bool(fed) and min(fed) >= 2.0),
    ]
    return result


def domain(bench: Bench) -> Result:
    """assess() alone (rules, enrichment, scorecard), timed by benchmarks.harness.domain."""
    result = Result("domain", "Domain micro-benchmark (rules, enrichment, scorecard; no I/O)")
    try:
        module = importlib.import_module("benchmarks.harness.domain")
    except ImportError:
        result.notes.append("skipped: benchmarks.harness.domain is not there yet")
        return result
    quick = bench.plan.steady_s < 10
    figures: dict[str, float] = (module.measure_domain(n=100, repeats=3) if quick
                                 else module.measure_domain())
    units = {"_ms": "ms", "_us": "µs"}
    for name, value in figures.items():
        unit = next((u for suffix, u in units.items() if name.endswith(suffix)), "")
        result.figures.append(Figure(name, value, unit))
    if "median_ms" in figures and figures.get("n"):
        per_1000 = round(figures["median_ms"] * 1000 / figures["n"], 2)
        result.figures.append(Figure("median per 1,000 applications", per_1000, "ms",
                                     f"< {DOMAIN_LIMIT_MS:.0f} ms", per_1000 < DOMAIN_LIMIT_MS))
    return result


SCENARIO_FUNCTIONS: dict[str, Callable[[Bench], Result]] = {
    "loadgen-ceiling": loadgen_ceiling, "embedded-max": embedded_max, "steady": steady,
    "batch": batch, "live": live, "profile": profile, "production-max": production_max,
    "naive-max": naive_max, "soak": soak, "domain": domain, "references": references,
}
