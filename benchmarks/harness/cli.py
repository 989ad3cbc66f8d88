"""`python -m benchmarks [--quick] [--only NAMES] [--out DIR]`: the standard scenarios.

Runs each selected scenario in order against freshly started services, then
writes OUT/benchmarks.md, OUT/bench/*.png and OUT/bench/results.json. A
scenario that fails is reported as such and the run goes on.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.harness.plan import QUICK, SCENARIOS, Plan
from loanflow import logs
from loanflow.settings import Settings

if TYPE_CHECKING:
    from benchmarks.harness.context import Bench, Result

PROG = "python -m benchmarks"
_HELP = "run the standard benchmark scenarios and write docs/benchmarks.md"
#: benchmarks/: the harness finds the baselines beside it, wherever it is run from.
BENCHMARKS_DIR = Path(__file__).resolve().parents[1]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # As `loanflow` configures its own logging (LOANFLOW_LOG_LEVEL, LOANFLOW_LOG_FORMAT).
    settings = Settings.from_env()
    logs.configure(level=settings.log_level, json=settings.log_format == "json")
    return _run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=_HELP)
    parser.add_argument("--quick", action="store_true",
                        help="tiny durations: a smoke test of the tooling (~1 min)")
    parser.add_argument("--only", default=",".join(SCENARIOS), metavar="NAMES",
                        help="comma-separated scenarios: " + ",".join(SCENARIOS))
    parser.add_argument("--out", type=Path, default=Path("docs"),
                        help="where benchmarks.md and bench/ go (default: docs)")
    parser.add_argument("--soak-s", type=float, default=None,
                        help="soak duration in seconds (default 300; the issue asks for 600,"
                        " which makes the run ~19 min)")
    parser.add_argument("--step-s", type=float, default=None,
                        help="seconds per step of the rate searches (default 15)")
    parser.add_argument("--naive-dir", type=Path, default=BENCHMARKS_DIR / "naive",
                        help="the naive baseline's app directory")
    return parser


def _run(args: argparse.Namespace) -> int:
    # Imported here: `--help` and a wrong --only answer without loading the scenarios.
    from benchmarks.harness import machine
    from benchmarks.harness.context import Bench
    from benchmarks.harness.scenarios import SCENARIO_FUNCTIONS

    names = tuple(n.strip() for n in args.only.split(",") if n.strip())
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"{PROG}: expected scenarios from {','.join(SCENARIOS)}, got"
              f" {','.join(unknown)}", file=sys.stderr)
        return 2
    plan = QUICK if args.quick else Plan()
    overrides = {"soak_s": args.soak_s, "step_s": args.step_s}
    plan = dataclasses.replace(plan, **{k: v for k, v in overrides.items() if v is not None})
    selected = tuple(n for n in SCENARIOS if n in names)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    began = time.monotonic()

    def log(message: str) -> None:
        print(f"[bench {time.monotonic() - began:6.0f}s] {message}", file=sys.stderr,
              flush=True)

    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop every service and remove the
    # throwaway Redis and PostgreSQL instead of leaving them running.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    log(f"scenarios {','.join(selected)}; estimated {plan.estimate_s(selected) / 60:.1f} min")
    facts = machine.describe()
    ticks_at_start = machine.cpu_ticks()
    work_dir = Path(tempfile.mkdtemp(prefix="loanflow-bench-"))
    bench = Bench(plan=plan, work_dir=work_dir, naive_dir=args.naive_dir.resolve(), log=log,
                  profile_in_soak="profile" in selected)
    try:
        results = [_scenario(bench, name, SCENARIO_FUNCTIONS[name]) for name in selected]
    finally:
        bench.close()
        shutil.rmtree(work_dir, ignore_errors=True)
    flags = " --quick" * args.quick + ("" if set(selected) == set(SCENARIOS)
                                        else f" --only {','.join(selected)}")
    header = {"args": flags, "seconds": time.monotonic() - began,
              "load_average_end": machine.load_average(),
              "steal": machine.steal_share(ticks_at_start, machine.cpu_ticks())}
    _write(results, args.out, facts, header, log)
    log(f"done in {header['seconds'] / 60:.1f} min; report {args.out / 'benchmarks.md'}")
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _scenario(bench: Bench, name: str, function: Callable[[Bench], Result]) -> Result:
    from benchmarks.harness.context import Result

    bench.log(f"{name} ...")
    started = time.monotonic()
    try:
        result = function(bench)
    except Exception as exc:  # one broken scenario must not lose the others
        bench.log(f"{name} failed: {exc!r}")
        result = Result(name, name, notes=[f"FAILED: {exc!r}",
                                           *traceback.format_exc().splitlines()[-3:]])
    result.seconds = time.monotonic() - started
    for f in result.figures:
        verdict = "" if f.passed is None else f" ({'pass' if f.passed else 'FAIL'})"
        bench.log(f"  {f.name}: {f.value} {f.unit}{verdict}")
    return result


def _write(results: list[Result], out: Path, facts: dict[str, Any], header: dict[str, Any],
           log: Any) -> None:
    from benchmarks.harness.report import kept_notes, render

    charts_dir = out / "bench"
    charts_dir.mkdir(parents=True, exist_ok=True)
    try:
        from benchmarks.harness.charts import write_charts

        charts = {p.stem for p in write_charts(results, charts_dir)}
    except ImportError:
        log("no charts: matplotlib is not installed (pip install -e '.[bench]')")
        charts = set()
    raw = {"machine": facts, "run": header, "results": [dataclasses.asdict(r) for r in results]}
    (charts_dir / "results.json").write_text(json.dumps(raw, indent=1, default=str))
    report = out / "benchmarks.md"
    report.write_text(render(results, machine=facts, header=header, charts=charts,
                             notes=kept_notes(report)))
