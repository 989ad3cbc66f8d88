"""`serve --api-workers 2 --processors 2`: separate processes sharing a port; SIGTERM
stops them all without losing an accepted application."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess, create_key
from tests.test_crash_safety import queued_count, stored_rows, submit_many, wait_until_drained

pytestmark = pytest.mark.slow


def child_pids(pid: int) -> list[int]:
    """API and worker children (not multiprocessing's resource tracker)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    pids = []
    for child in out.split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"loanflow" in cmdline or b"spawn_main" in cmdline:
            pids.append(int(child))
    return pids


def alive(pid: int) -> bool:
    return subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode == 0


def test_api_workers_and_processors_run_as_separate_processes(tmp_path):
    key = create_key(tmp_path, "submit,read")
    server = ServerProcess(tmp_path, api_workers="2", processors="2").start()
    try:
        assert server.proc is not None
        # 2 worker processes + uvicorn's 2 API processes.
        assert len(child_pids(server.proc.pid)) == 4
        accepted = submit_many(server.url, key, 300)
        wait_until_drained(tmp_path, 300)
    finally:
        server.stop()

    assert {(idem, app_id) for app_id, idem, _ in stored_rows(tmp_path)} == set(accepted.items())


def test_sigterm_stops_every_process_and_keeps_what_was_accepted(tmp_path):
    key = create_key(tmp_path, "submit,read")
    server = ServerProcess(tmp_path, api_workers="2", processors="1").start()
    assert server.proc is not None
    children = child_pids(server.proc.pid)
    accepted = submit_many(server.url, key, 500)

    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=40) == 0

    assert len(children) == 3
    assert not any(alive(pid) for pid in children)
    # What was accepted is stored or still queued; a restart finishes it.
    assert len(stored_rows(tmp_path)) + queued_count(tmp_path) == 500
    again = ServerProcess(tmp_path).start()
    try:
        wait_until_drained(tmp_path, 500)
    finally:
        again.stop()
    assert {(idem, app_id) for app_id, idem, _ in stored_rows(tmp_path)} == set(accepted.items())
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url + "/healthz", timeout=1)


def test_sigterm_to_a_lone_api_process_stops_its_workers_before_it_exits(tmp_path):
    # One API process: uvicorn raises the SIGTERM it handled again after shutting down.
    key = create_key(tmp_path, "submit,read")
    server = ServerProcess(tmp_path, processors="-1").start()  # the mode's: two workers
    assert server.proc is not None
    workers = child_pids(server.proc.pid)
    accepted = submit_many(server.url, key, 50)

    server.proc.send_signal(signal.SIGTERM)

    assert server.proc.wait(timeout=40) == 0
    assert workers and not any(alive(pid) for pid in workers)
    assert len(stored_rows(tmp_path)) + queued_count(tmp_path) == len(accepted)


def test_embedded_serve_runs_its_processors_in_two_processes_of_their_own(tmp_path):
    key = create_key(tmp_path, "submit,read")
    server = ServerProcess(tmp_path, processors="-1").start()  # left to the mode
    try:
        assert server.proc is not None
        workers = child_pids(server.proc.pid)
        assert len(workers) == min(2, os.cpu_count() or 1)
        assert all(b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes() for pid in workers)
        accepted = submit_many(server.url, key, 100)
        wait_until_drained(tmp_path, 100)
    finally:
        server.stop()

    assert {(idem, app_id) for app_id, idem, _ in stored_rows(tmp_path)} == set(accepted.items())


def test_a_killed_serve_takes_its_workers_with_it(tmp_path):
    server = ServerProcess(tmp_path, processors="2").start()
    assert server.proc is not None
    workers = child_pids(server.proc.pid)

    server.kill()  # SIGKILL: serve runs no shutdown code

    assert len(workers) == 2
    deadline = time.monotonic() + 30  # each finishes or hands back its batch first
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers)
