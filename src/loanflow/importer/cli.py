"""`loanflow import FILE --url URL --key KEY [...]`: a CSV or NDJSON file into the service.

Exit codes: 0 every line accepted or rejected-and-reported; 1 the import
stopped (the summary says why; rerun to resume); 2 a usage error, nothing
sent; 130 interrupted (rerun to resume).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

import uvloop

from loanflow.importer.batches import MAX_BATCH_ITEMS
from loanflow.importer.columns import HeaderError
from loanflow.importer.progress import ProgressPrinter, format_summary
from loanflow.importer.readers import Format
from loanflow.importer.run import ImportSpec, run_import
from loanflow.importer.state import StateError
from loanflow.settings import Settings

_HELP = "import a CSV or NDJSON file of applications through the batch endpoint, resumably"
_FORMATS: dict[str, Format] = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson"}
EXIT_STOPPED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def add_command(commands: Any) -> None:
    """Register `import` on the `loanflow` subparsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "import", help=_HELP, description=_HELP + ". Lines without their own idempotency key"
        " get one derived from the file's content and the line number, so a rerun (after a"
        " crash, Ctrl-C or a network error) resumes and never duplicates. README: 'Importing"
        " files' lists the CSV columns.")
    parser.add_argument("file", type=Path, help="a .csv (header row) or .ndjson/.jsonl file")
    parser.add_argument("--url", required=True, help="the service, e.g. http://127.0.0.1:8000")
    parser.add_argument("--key", required=True, help="an API key with submit scope")
    parser.add_argument("--format", choices=("csv", "ndjson"), default=None,
                        help="default: from the file's extension")
    parser.add_argument("--batch-size", type=int, default=500,
                        help=f"applications per request (1-{MAX_BATCH_ITEMS})")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    parser.add_argument("--report", type=Path, default=None,
                        help="rejected lines, NDJSON (default: FILE.rejected.ndjson)")
    parser.add_argument("--state", type=Path, default=None,
                        help="resume state (default: FILE.import-state.json beside the report)")
    parser.add_argument("--restart", action="store_true",
                        help="ignore the saved state and send every line again (same keys:"
                        " what was accepted comes back as replays)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds to wait for one answer")
    parser.add_argument("--retry-for", type=float, default=300.0,
                        help="seconds of retrying one batch (5xx, 429, 503, timeouts, lost"
                        " connections) before the import stops")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as one JSON object; no progress line")
    parser.set_defaults(run=_run)


def _run(settings: Settings, args: argparse.Namespace) -> int:
    path: Path = args.file
    fmt = args.format or _FORMATS.get(path.suffix.lower())
    if fmt is None:
        return _usage(f"cannot tell the format of {path.name}: pass --format csv or ndjson")
    if not path.is_file():
        return _usage(f"no file {path}")
    report = args.report or path.with_name(path.name + ".rejected.ndjson")
    state = args.state or report.with_name(path.name + ".import-state.json")
    for written in (report, state):
        if not written.parent.is_dir():
            return _usage(f"no directory {written.parent} for {written.name}")
    try:
        spec = ImportSpec(path=path, format=fmt, url=args.url, key=args.key,
                          report_path=report, state_path=state, batch_size=args.batch_size,
                          concurrency=args.concurrency, timeout_s=args.timeout,
                          retry_for_s=args.retry_for, restart=args.restart)
    except ValueError as exc:
        return _usage(str(exc))
    # httpx logs every request at INFO: noise around the progress line.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    printer = None if args.json else ProgressPrinter()
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            summary = runner.run(run_import(
                spec, on_progress=printer.show if printer else None,
                progress_interval_s=printer.interval_s if printer else 1.0))
    except (HeaderError, StateError) as exc:
        return _usage(str(exc))
    except OSError as exc:  # the file, the report or the state: the state holds what was done
        print(f"loanflow import: stopped: {exc}", file=sys.stderr)
        return EXIT_STOPPED
    except KeyboardInterrupt:
        if printer:
            printer.end()
        print(f"loanflow import: interrupted; rerun the same command to resume (state: {state})",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    if printer:
        printer.end()
    print(json.dumps(summary) if args.json else format_summary(summary), flush=True)
    if summary["stopped"]:
        print(f"loanflow import: stopped: {summary['stopped']}", file=sys.stderr)
        return EXIT_STOPPED
    return 0


def _usage(message: str) -> int:
    print(f"loanflow import: {message}", file=sys.stderr)
    return EXIT_USAGE
