"""The long-running scenarios: the soak (RSS of every process) and the profiles."""

from __future__ import annotations

import threading
from typing import Any

from benchmarks.harness.context import Bench, Figure, Result, cores, p99_ms, under
from benchmarks.harness.measure import offer
from benchmarks.harness.procs import RssSampler
from benchmarks.harness.profile import Profiler
from benchmarks.harness.search import warm

#: RSS a loanflow process may gain from the end of the soak's first fifth to its end.
RSS_GROWTH_LIMIT = 0.10


def profile(bench: Bench) -> Result:
    """py-spy on every Python process of each mode under load (production: in the soak)."""
    plan = bench.plan
    result = Result("profile", "Where the time goes (py-spy, under load)")
    for mode, start in (("embedded", bench.embedded), ("production", bench.production_service)):
        if mode in bench.profiles:
            result.extra[mode] = bench.profiles[mode]
            continue
        found = bench.found.get(f"{mode}-max")
        rate = found.best_per_s if found and found.best_per_s else plan.soak_rate_per_s
        service = start()
        try:
            warm(service, plan)
            profiler = Profiler(service.pids(), duration_s=plan.profile_s)
            run = offer(service, f"{mode} {rate:,.0f}/s", rate_per_s=rate,
                        duration_s=plan.profile_s + 1)
            result.extra[mode] = {"rate_per_s": rate, "during": "a run of its own",
                                  "processes": profiler.finish()}
        finally:
            service.stop()
        result.runs.append(run)
        result.figures.append(Figure(f"{mode}: p99 HTTP while profiled at {rate:,.0f}/s",
                                     p99_ms(run.summary), "ms"))
    return result


def soak(bench: Bench) -> Result:
    plan = bench.plan
    rate, minutes = plan.soak_rate_per_s, plan.soak_s / 60
    result = Result("soak", f"Soak at {rate:,.0f}/s for {minutes:g} min (production), RSS"
                    f" of every process every {plan.rss_every_s:g} s")
    service = bench.production_service()
    profilers: list[Profiler] = []
    # py-spy starts a third of the way in (steady state) and reads without stopping.
    later = threading.Timer(plan.soak_s / 3, lambda: profilers.append(
        Profiler(service.pids(), duration_s=min(plan.profile_s, plan.soak_s / 2))))
    try:
        warm(service, plan)
        with RssSampler(service.watched_pids,
                        interval_s=plan.rss_every_s) as sampler:
            if bench.profile_in_soak:
                later.start()
            run = offer(service, "soak", rate_per_s=rate, duration_s=plan.soak_s)
    finally:
        later.cancel()
        service.stop()
    if profilers:
        bench.profiles["production"] = {"rate_per_s": rate, "during": "the soak",
                                        "processes": profilers[0].finish()}
        result.notes.append(f"py-spy sampled the service for {plan.profile_s:g} s of it")
    run.cpu_s = sampler.cpu_by_label() or run.cpu_s
    result.runs.append(run)
    result.notes.append(f"CPU, cores by process: {cores(run)}")
    rss = sampler.series()
    result.extra["rss"] = rss
    # The last samples fall in the read-back, whose 5-minute series query fattens the
    # API process that answers it: growth is judged on the load's own seconds.
    load_end_s = run.summary["t0_unix_s"] + plan.soak_s - sampler.started_unix_s
    growth = rss_growth(rss, until_s=load_end_s)
    worst = max(growth.values()) if growth else None
    result.figures += [
        Figure("p99 HTTP", p99_ms(run.summary), "ms", f"< {plan.p99_limit_ms:.0f} ms",
               under(p99_ms(run.summary), plan.p99_limit_ms)),
        Figure("p99 end-to-end", p99_ms(run.summary, end_to_end=True), "ms",
               f"< {plan.p99_limit_ms:.0f} ms",
               under(p99_ms(run.summary, end_to_end=True), plan.p99_limit_ms)),
        Figure("errors", run.summary["errors"], "", "0", run.summary["errors"] == 0),
        Figure("largest RSS growth of a loanflow process after warm-up",
               None if worst is None else round(100 * worst, 1), "%",
               f"< {100 * RSS_GROWTH_LIMIT:.0f}%", worst is not None and worst < RSS_GROWTH_LIMIT),
    ]
    result.notes += [f"{name}: {100 * g:+.1f}%" for name, g in sorted(growth.items())]
    return result


def rss_growth(rss: dict[str, Any], *, until_s: float) -> dict[str, float]:
    """Per loanflow process: RSS at the last sample before `until_s` over RSS at the first
    sample after a fifth of that (the warm-up: pools, caches, the first AOF rewrite)."""
    times: list[float] = [t for t in rss["t_s"] if t <= until_s]
    if len(times) < 3:
        return {}
    settled = next(i for i, t in enumerate(times) if t >= times[-1] / 5)
    last = len(times) - 1
    growth = {}
    for name, values in rss["processes"].items():
        if not name.startswith(("loanflow", "uvicorn")):
            continue
        start, end = values[settled], values[last]
        if start and end:
            growth[name] = end / start - 1
    return growth
