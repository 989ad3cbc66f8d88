"""The progress line: rewritten in place on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

from loanflow.importer.progress import ProgressPrinter, Snapshot, progress_line

SNAPSHOT = Snapshot(lines=12_345, rejected=7, rate_per_s=4_321.0, done_fraction=0.25,
                    eta_s=125, retrying=None)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_line_shows_lines_share_rate_eta_and_rejected() -> None:
    assert progress_line(SNAPSHOT) == "12,345 lines   25.0%  4,321/s  ETA 2m05s  rejected 7"


def test_a_retry_in_progress_is_shown() -> None:
    line = progress_line(Snapshot(**{**SNAPSHOT.__dict__, "retrying": "503 queue full"}))

    assert line.endswith("retrying: 503 queue full")


def test_a_terminal_gets_one_line_rewritten_and_ended() -> None:
    out = _Terminal()
    printer = ProgressPrinter(out)

    printer.show(SNAPSHOT)
    printer.show(SNAPSHOT)
    printer.end()

    assert out.getvalue().count("\r") == 2 and out.getvalue().endswith("\n")
    assert printer.interval_s < 1


def test_a_log_gets_plain_lines_now_and_then() -> None:
    out = io.StringIO()
    printer = ProgressPrinter(out)

    printer.show(SNAPSHOT)
    printer.end()

    assert out.getvalue() == progress_line(SNAPSHOT) + "\n"
    assert printer.interval_s >= 1
