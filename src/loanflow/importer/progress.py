"""The progress line on stderr and the final summary."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, TextIO

from loanflow.terminal import ProgressLine


@dataclasses.dataclass(frozen=True, kw_only=True)
class Snapshot:
    lines: int
    rejected: int
    rate_per_s: float
    done_fraction: float
    eta_s: float | None
    retrying: str | None


def progress_line(s: Snapshot) -> str:
    eta = "?" if s.eta_s is None else _duration(s.eta_s)
    line = (f"{s.lines:,} lines  {s.done_fraction:6.1%}  {s.rate_per_s:,.0f}/s  ETA {eta}"
            f"  rejected {s.rejected:,}")
    return f"{line}  retrying: {s.retrying}" if s.retrying else line


class ProgressPrinter:
    """The import's progress line on stderr (a terminal's rewritten, a log's appended)."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self._line = ProgressLine(stream)
        self.interval_s = self._line.interval_s

    def show(self, snapshot: Snapshot) -> None:
        self._line.show(progress_line(snapshot)[:160])

    def end(self) -> None:
        self._line.end()


def format_summary(summary: dict[str, Any]) -> str:
    resumed = summary["resumed_from_line"]
    outcome = "complete" if summary["complete"] else "STOPPED"
    if summary["complete"] and resumed and not summary["lines_this_run"]:
        outcome = "already imported, nothing sent (--restart sends every line again)"
    lines = [
        f"{summary['file']}: {outcome}",
        f"  lines     {summary['lines']:>10,}"
        + (f"  (resumed at line {resumed:,})" if resumed else ""),
        f"  accepted  {summary['accepted']:>10,}",
        f"  replayed  {summary['replayed']:>10,}  (sent before: same key, same application)",
        f"  rejected  {summary['rejected']:>10,}  (see {summary['report']})",
        f"  elapsed   {summary['elapsed_s']:>10.1f} s  ({summary['rate_per_s']:,.0f} lines/s"
        " this run)",
    ]
    if summary["stopped"]:
        lines.append(f"  stopped:  {summary['stopped']}")
        lines.append(f"  rerun the same command to resume at line {summary['next_line']:,}"
                     f" (state: {summary['state']})")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
