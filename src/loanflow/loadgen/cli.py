"""`loanflow loadgen --url URL --key KEY --rate R --duration S [...]`: open-loop load."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import uvloop

from loanflow.loadgen.driver import MAX_BATCH, LoadSpec, run
from loanflow.loadgen.report import format_text
from loanflow.settings import Settings

_HELP = "offer applications at a fixed rate and report latency (open loop)"


def add_command(commands: Any) -> None:
    """Register `loadgen` on the `loanflow` subparsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "loadgen", help=_HELP, description=_HELP + ". Latency runs from each request's"
        " intended send time, so a stalled server cannot hide its queueing.")
    parser.add_argument("--url", required=True, help="the service, e.g. http://127.0.0.1:8000")
    parser.add_argument("--key", default="", help="an API key with submit scope (and read,"
                        " for the end-to-end latency)")
    parser.add_argument("--rate", type=float, required=True,
                        help="requests per second (batches per second with --batch)")
    parser.add_argument("--duration", type=float, required=True, help="seconds")
    parser.add_argument("--invalid-ratio", type=float, default=0.0,
                        help="share of applications breaking one business rule (still 202)")
    parser.add_argument("--duplicate-ratio", type=float, default=0.0,
                        help="share resending an earlier idempotency key with its body")
    parser.add_argument("--batch", type=int, default=0, metavar="N",
                        help=f"post N applications per request (1-{MAX_BATCH}) to the batch"
                        " endpoint")
    parser.add_argument("--connections", type=int, default=64,
                        help="keep-alive connections, also the most requests in flight")
    parser.add_argument("--processes", type=int, default=1, metavar="K",
                        help="spread the schedule over K generator processes (one core each)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the applications")
    parser.add_argument("--get", default=None, metavar="PATH",
                        help="GET PATH instead of submitting (e.g. /healthz: the driver's"
                        " own ceiling)")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as one JSON object; no progress line")
    parser.set_defaults(run=_run)


def _run(settings: Settings, args: argparse.Namespace) -> int:
    if not args.key and args.get is None:
        print("loanflow loadgen: expected --key (a key with submit scope)", file=sys.stderr)
        return 2
    try:
        spec = LoadSpec(
            url=args.url, key=args.key, rate_per_s=args.rate, duration_s=args.duration,
            invalid_ratio=args.invalid_ratio, duplicate_ratio=args.duplicate_ratio,
            batch_size=args.batch, connections=args.connections, seed=args.seed,
            get_path=args.get, processes=args.processes,
        )
    except ValueError as exc:
        print(f"loanflow loadgen: {exc}", file=sys.stderr)
        return 2
    # The end-to-end read-back uses httpx, which logs every request at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    progress = None if args.json else _progress_printer()
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            summary = runner.run(run(spec, on_progress=progress))
    except OSError as exc:
        print(f"loanflow loadgen: cannot connect to {args.url}: {exc}", file=sys.stderr)
        return 1
    if progress is not None and sys.stderr.isatty():
        print(file=sys.stderr)  # end the \r-rewritten progress line
    print(json.dumps(summary) if args.json else format_text(summary), flush=True)
    return 0


def _progress_printer() -> Callable[[str], None]:
    end = "\r" if sys.stderr.isatty() else "\n"

    def show(line: str) -> None:
        print(line.ljust(72), end=end, file=sys.stderr, flush=True)

    return show
