"""How long each scenario runs: the full plan (under 15 minutes) and `--quick`."""

from __future__ import annotations

import dataclasses

#: Every scenario, in the order a full run takes them.
SCENARIOS = ("loadgen-ceiling", "references", "embedded-max", "production-max", "naive-max",
             "steady", "batch", "live", "soak", "profile", "domain")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Plan:
    #: A saturating probe finds the accept ceiling; the search stays below it.
    probe_s: float = 4.0
    step_s: float = 12.0
    steps: int = 4
    #: The criterion of "sustained": p99 HTTP and p99 end-to-end below this.
    p99_limit_ms: float = 200.0
    steady_rate_per_s: float = 500.0
    #: The issue's targets at the steady rate (the seed's bar is `p99_limit_ms`).
    steady_http_p99_ms: float = 5.0
    steady_e2e_p99_ms: float = 20.0
    steady_s: float = 60.0
    batch_size: int = 1000
    batch_rate_per_s: float = 4.0
    batch_s: float = 8.0
    soak_rate_per_s: float = 1000.0
    soak_s: float = 300.0
    rss_every_s: float = 5.0
    live_dashboards: int = 20
    live_s: float = 8.0
    #: Rounds of (none, dashboards), alternated so drift hits both alike.
    live_rounds: int = 2
    profile_s: float = 10.0
    ceiling_rate_per_s: float = 10_000.0
    ceiling_s: float = 8.0
    #: A warm-up after each start: lazy imports, pools, caches.
    warm_rate_per_s: float = 200.0
    warm_s: float = 2.0
    #: API processes and worker processes of production mode (and naive workers). One
    #: worker on 2 cores: its batches are fuller than two workers' (at 600/s: 650 µs of
    #: worker CPU per application instead of 845, HTTP p99 about half).
    api_workers: int = 2
    processors: int = 1
    #: The round-robin beside the references (wrk): rounds, and seconds of load a run.
    roundrobin_rounds: int = 2
    roundrobin_s: float = 10.0

    def estimate_s(self, scenarios: tuple[str, ...]) -> float:
        """A wall-clock estimate, starts and read-backs included (calibrated on 2 cores)."""
        start = 4.0 + self.warm_s
        search = self.probe_s + (self.steps + 1) * (self.step_s + 3) + 3 * start
        cost = {
            "loadgen-ceiling": 2 * self.ceiling_s + 6,
            "embedded-max": search,
            "production-max": search + 5,
            "naive-max": search,
            "steady": 2 * (self.steady_s + 3 + start),
            "batch": 2 * (self.batch_s + 10 + start),
            "live": 2 * self.live_rounds * (self.live_s + 2 + start),
            "profile": self.profile_s + 3 + start,  # production is profiled in the soak
            "soak": self.soak_s + 5 + start,
            "domain": 5.0,
            # Five targets a round: start, warm-up, load, drain, stop.
            "references": self.roundrobin_rounds * 5 * (self.roundrobin_s + 15),
        }
        return sum(cost[name] for name in scenarios) + 10


QUICK = Plan(
    probe_s=1.5, step_s=2.0, steps=2, steady_s=3.0, batch_rate_per_s=2.0, batch_s=2.0,
    soak_s=6.0, rss_every_s=1.0, live_dashboards=3, live_s=2.0, live_rounds=1, profile_s=2.0,
    ceiling_rate_per_s=10_000.0, ceiling_s=2.0, warm_s=0.5, roundrobin_rounds=1,
    roundrobin_s=2.0,
)
