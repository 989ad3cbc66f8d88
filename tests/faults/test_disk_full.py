"""Fault 8: the embedded mode's disk fills up, then is freed.

The data directory lives on a tmpfs of its own (`mount -t tmpfs -o size=…`,
we run as root), filled to the last byte with a filler file. SQLite then
fails its commits with SQLITE_FULL: the API must answer 503, never a 202 it
could not make durable; once the filler is removed, intake resumes and every
202 ends stored.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Deployment
from tests.faults.harness import Bench

pytestmark = pytest.mark.faults

DISK_MB = 64
PRE_S = 2.0
FULL_S = 3.0
POST_S = 2.0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True, text=True, timeout=10,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (not root?): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        # Lazy: a server that failed to stop may still hold files open.
        subprocess.run(["umount", "--lazy", str(mount_point)], check=False, timeout=10)


def fill(directory: Path) -> Path:
    """A file taking every free byte of `directory`'s filesystem (down to its last page)."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        chunk = 1 << 20
        while chunk >= 512:
            try:
                os.write(fd, b"\0" * chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk //= 2
    finally:
        os.close(fd)
    return filler


@pytest.mark.timeout(90)
def test_a_full_disk_answers_503_never_a_202_it_cannot_keep(
    small_disk: Path, tmp_path: Path, record_outcome
):
    deployment = Deployment(small_disk / "data")
    with Bench(deployment, tmp_path / "logs", record_outcome, serve=True,
               settings={"processors": "2"}) as b:
        b.load_for(PRE_S)
        filler = fill(small_disk)
        full_at = time.monotonic()
        try:
            b.load.wait_for(503, since=full_at, timeout_s=15)
            b.load_for(FULL_S)
        finally:
            filler.unlink()
        healed_at = time.monotonic()
        b.load_for(POST_S)
        outcome = b.finish(f"8 embedded disk full ({DISK_MB} MB tmpfs)", healed_at=healed_at)
        during = b.load.statuses(full_at + 1.0, healed_at)

    outcome.assert_clean()
    assert during[503] > 0, during
