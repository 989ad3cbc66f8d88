"""A progress line for long commands: rewritten in place on a terminal, appended as plain
lines to anything else (a log), each as often as suits the reader."""

from __future__ import annotations

from typing import TextIO

#: A terminal's line is rewritten this often; a log (not a TTY) gets a line this often.
TTY_INTERVAL_S = 0.25
LOG_INTERVAL_S = 5.0


class ProgressLine:
    def __init__(self, stream: TextIO) -> None:
        self._stream, self._tty = stream, stream.isatty()
        #: How often to show a new line: callers pace themselves by it.
        self.interval_s = TTY_INTERVAL_S if self._tty else LOG_INTERVAL_S
        self._width = 0

    def show(self, line: str) -> None:
        if self._tty:
            self._stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def end(self) -> None:
        """Leave a terminal's line as it is, on a line of its own."""
        if self._tty and self._width:
            self._stream.write("\n")
            self._stream.flush()
