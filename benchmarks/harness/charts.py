"""PNG charts per scenario: throughput and latency percentiles over time (and RSS for the soak).

x is seconds since the scenario's first load run. The generator's view (answers
per second, HTTP p50/p90/p99 from the intended send time) is drawn solid; the
service's own view (stored per second, end-to-end p99) dashed. matplotlib is
in the `bench` extra and runs with the Agg backend (no display).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.harness.context import Result


def write_charts(results: list[Result], directory: Path) -> list[Path]:
    """One PNG per scenario with load runs; the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for result in results:
        runs = [run for run in result.runs if run.summary["series"]]
        if not runs:
            continue
        rss = result.extra.get("rss")
        rows = 3 if rss else 2
        fig, axes = plt.subplots(rows, 1, figsize=(10, 3.2 * rows), sharex=True,
                                 constrained_layout=True)
        origin = min(run.summary["t0_unix_s"] for run in runs)
        throughput, latency = axes[0], axes[1]
        for index, run in enumerate(runs):
            colour = f"C{index % 10}"
            base = run.summary["t0_unix_s"] - origin
            series = run.summary["series"]
            xs = [base + s["t_s"] for s in series]
            throughput.plot(xs, [s["answered"] - s["errors"] for s in series], color=colour,
                            label=run.label)
            for name, style in (("p50", ":"), ("p90", "--"), ("p99", "-")):
                ys = [s["latency_ms"][name] for s in series]
                latency.plot(xs, ys, color=colour, linestyle=style, linewidth=1,
                             label=f"{run.label} HTTP {name}" if index == 0 else None)
            if run.service and run.service["t"]:
                sx = [t - origin for t in run.service["t"]]
                throughput.plot(sx, run.service["stored_per_s"], color=colour,
                                linestyle="--", linewidth=1)
                latency.plot(sx, run.service["e2e_p99_ms"], color=colour, linestyle="-.",
                             linewidth=1.5,
                             label="end-to-end p99 (service)" if index == 0 else None)
        throughput.set_ylabel("per second")
        throughput.set_title(f"{result.title}: 2xx answers/s (solid), stored/s (dashed)",
                             fontsize=10)
        latency.set_yscale("log")
        latency.set_ylabel("ms (log)")
        latency.set_title("latency: HTTP p50 dotted, p90 dashed, p99 solid;"
                          " end-to-end p99 dash-dot", fontsize=10)
        if len(runs) <= 8:
            throughput.legend(fontsize=7, loc="upper right")
        if rss:
            _rss(axes[2], rss, origin, runs[0].summary["t0_unix_s"])
        axes[-1].set_xlabel("seconds")
        path = directory / f"{result.scenario}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)
    return written


def _rss(axis: Any, rss: dict[str, Any], origin: float, started: float) -> None:
    # RSS samples count from the sampler's start, just before the soak's t0.
    xs = [t + (started - origin) for t in rss["t_s"]]
    # PostgreSQL's processes share their buffers, which each one's RSS counts again:
    # the largest of them, not their sum, is the honest single line.
    postgres = [0.0] * len(xs)
    for name, values in rss["processes"].items():
        if name.startswith("postgres"):
            postgres = [max(a, b or 0.0) for a, b in zip(postgres, values, strict=True)]
            continue
        axis.plot(xs, values, linewidth=1, label=name)
    axis.plot(xs, postgres, linewidth=1, linestyle="--", label="postgres (largest process)")
    axis.set_ylabel("RSS MiB")
    axis.set_title("resident memory of every process", fontsize=10)
    axis.legend(fontsize=7, loc="upper left", ncol=2)
