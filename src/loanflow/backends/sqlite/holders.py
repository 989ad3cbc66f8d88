"""Who has the embedded broker open: a lock file beside it, held shared for each broker's life.

After a SIGKILL, what the dead process had reserved stays leased for the whole
visibility timeout. A starting process that can take the lock exclusively
knows that no process has the broker open, so every earlier holder is gone
and nothing is held by anyone alive: it hands those reservations back at
once, then shares the lock like every other holder. flock locks go away with
their process, however it ends. The exclusive lock is kept through the hand-
back, so no process can reserve before it is done (a newcomer waits on its
shared lock).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class Holders:
    """The lock file of one broker file; `enter()` on open, `leave()` on close."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def enter(self) -> bool:
        """True: no other process has the broker open, and this one holds it alone until
        `share()`; False: others do, and this one now shares it with them."""
        if self._fd is not None:
            raise RuntimeError(f"expected {self.path} not entered yet, got it entered")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._fd = fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            # Blocks only while a starting process holds it alone for its hand-back.
            fcntl.flock(fd, fcntl.LOCK_SH)
            return False

    def share(self) -> None:
        """After the hand-back: let other processes open the broker too."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_SH)

    def leave(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the lock
            self._fd = None
