"""Where an interrupted import resumes: a small JSON file, replaced atomically.

It records the first line not yet confirmed (every line before it was answered
by the service or rejected here), the byte offset where that line starts, how
long the report was at that point, and the counts so far. A rerun seeks to the
offset; lines after it that were already sent go again under the same keys and
come back as replays. It is written with tmp + fsync + rename, then the
directory is synced, so a crash leaves either the old state or the new one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import msgspec

#: Version of the state layout; a state of another version is refused, not guessed at.
STATE_VERSION = 1


class ResumeState(msgspec.Struct, kw_only=True):
    v: int = STATE_VERSION
    file: str
    #: readers.file_identity(): the keys depend on it, so a resume must match it.
    file_id: str
    format: str
    next_line: int = 1
    offset: int = 0
    report_bytes: int = 0
    accepted: int = 0
    replayed: int = 0
    rejected: int = 0
    complete: bool = False

    @property
    def lines(self) -> int:
        return self.accepted + self.replayed + self.rejected


class StateError(ValueError):
    """The state file is unreadable or belongs to other content."""


def load(path: Path) -> ResumeState | None:
    """The saved state, None when there is none; StateError when it cannot be used."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        state = msgspec.json.decode(raw, type=ResumeState)
    except msgspec.DecodeError as exc:
        raise StateError(f"{path} is not an import state file: {exc}") from None
    if state.v != STATE_VERSION:
        raise StateError(f"expected state version {STATE_VERSION} in {path}, got {state.v}")
    return state


def save(path: Path, state: ResumeState) -> None:
    """Replace the state file atomically and durably."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(msgspec.json.encode(state) + b"\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Makes the rename itself durable (POSIX; Windows has no directory handles)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
