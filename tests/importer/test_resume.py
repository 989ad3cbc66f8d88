"""Interrupted imports: killed, throttled, or left by the server mid-way, every line lands once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LOANFLOW, ServerProcess, create_key
from tests.importer.conftest import (
    broker_counts,
    import_file,
    metrics_summary,
    wait_until,
)
from tests.importer.files import applications, write_csv

pytestmark = pytest.mark.slow


@pytest.fixture
def accept_only(tmp_path: Path) -> Iterator[ServerProcess]:
    """Accepts without processing, so the broker holds every accepted line to count; no rate
    limit and room for every line in the queue."""
    server = ServerProcess(tmp_path / "data", processors="0", rate_limit_per_s="0",
                           max_queue_depth="1000000")
    server.data_dir.mkdir()
    yield server.start()
    server.stop()


def _start_import(server: ServerProcess, key: str, path: Path, *args: str
                  ) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*LOANFLOW, "import", str(path), "--url", server.url, "--key", key, "--json", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _confirmed_line(state_path: Path) -> int:
    """The state's resume line (the file is replaced atomically: never half written)."""
    try:
        return int(json.loads(state_path.read_text())["next_line"])
    except FileNotFoundError:
        return 1


@pytest.mark.timeout(200)  # ~45 s on 2 busy cores; the waits inside are bounded too
def test_a_100k_line_import_killed_halfway_and_rerun_lands_every_line_once(
    accept_only: ServerProcess, tmp_path: Path
) -> None:
    # Given a 100,000-line CSV, and an import of it killed once half its lines are confirmed
    key = create_key(accept_only.deployment, "submit,read")
    path = write_csv(tmp_path / "big.csv", applications(100_000, seed=100))
    state = tmp_path / "big.csv.import-state.json"
    args = ("--batch-size", "1000", "--concurrency", "4")
    first = _start_import(accept_only, key, path, *args)
    wait_until(lambda: _confirmed_line(state) > 50_001 or first.poll() is not None,
               timeout_s=60, what="half the lines confirmed")
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    killed_at = _confirmed_line(state)
    assert 50_001 < killed_at < 100_002, "the first run ended before it could be killed"

    # When the same command runs again
    done = import_file(accept_only, key, path, *args, timeout_s=90)

    # Then it resumed there and every line was accepted exactly once
    assert done.returncode == 0, done.stderr
    s = done.summary
    assert s["resumed_from_line"] == killed_at
    assert (s["complete"], s["lines"], s["rejected"]) == (True, 100_000, 0)
    assert s["accepted"] + s["replayed"] == 100_000
    assert s["lines_this_run"] == 100_002 - killed_at
    # ... as the service shows: 100,000 accepted (a replay is not counted there), 100,000
    # queued, each under its own application id and idempotency key.
    wait_until(lambda: metrics_summary(accept_only, key)["totals"]["accepted"] >= 100_000,
               timeout_s=10, what="the metrics settled")
    service = metrics_summary(accept_only, key)
    assert service["totals"]["accepted"] == 100_000
    assert service["totals"]["replayed"] == s["replayed"]
    assert broker_counts(accept_only.data_dir) == (100_000, 100_000, 100_000)


def test_the_server_going_away_mid_import_is_retried_and_nothing_duplicated(
    accept_only: ServerProcess, tmp_path: Path
) -> None:
    key = create_key(accept_only.deployment, "submit,read")
    path = write_csv(tmp_path / "apps.csv", applications(10_000, seed=101))
    state = tmp_path / "apps.csv.import-state.json"
    running = _start_import(accept_only, key, path, "--batch-size", "100",
                            "--concurrency", "2")
    wait_until(lambda: _confirmed_line(state) > 2_000 or running.poll() is not None,
               timeout_s=30, what="the import under way")

    accept_only.kill()   # mid-batch: some answers are lost after the commit
    accept_only.start()  # same port and data; the importer has been retrying meanwhile
    out, err = running.communicate(timeout=60)

    assert running.returncode == 0, err
    s = json.loads(out)
    assert s["retries"] > 0
    assert (s["lines"], s["accepted"] + s["replayed"], s["rejected"]) == (10_000, 10_000, 0)
    assert broker_counts(accept_only.data_dir) == (10_000, 10_000, 10_000)


def test_429_is_honoured_and_every_line_still_accepted(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, processors="0", rate_limit_per_s="2000",
                           rate_limit_burst="1000").start()
    try:
        key = create_key(server.deployment, "submit,read")
        path = write_csv(tmp_path / "apps.csv", applications(4_000, seed=102))

        done = import_file(server, key, path, "--batch-size", "500", "--concurrency", "4")

        assert done.returncode == 0, done.stderr
        assert (done.summary["accepted"], done.summary["retries"] > 0) == (4_000, True)
        assert metrics_summary(server, key)["totals"]["refused_4xx"] > 0  # the 429s
    finally:
        server.stop()


def test_a_batch_never_answered_stops_the_import_with_where_to_resume(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "apps.csv", applications(3, seed=103))
    nobody = ServerProcess(tmp_path)  # a free port nothing listens on

    done = import_file(nobody, "lf_any", path, "--retry-for", "1")

    assert done.returncode == 1
    assert "no answer for lines 2-4 after 1s of retries; last: ConnectError" in done.stderr
    assert done.summary["next_line"] == 1
    assert os.path.exists(tmp_path / "apps.csv.import-state.json")


def test_ctrl_c_stops_with_the_state_saved_and_a_rerun_finishes(
    accept_only: ServerProcess, tmp_path: Path
) -> None:
    key = create_key(accept_only.deployment, "submit,read")
    path = write_csv(tmp_path / "apps.csv", applications(10_000, seed=104))
    state = tmp_path / "apps.csv.import-state.json"
    running = _start_import(accept_only, key, path, "--batch-size", "100",
                            "--concurrency", "2")
    wait_until(lambda: _confirmed_line(state) > 1_000 or running.poll() is not None,
               timeout_s=30, what="the import under way")

    running.send_signal(signal.SIGINT)
    _, err = running.communicate(timeout=30)
    stopped_at = _confirmed_line(state)
    done = import_file(accept_only, key, path)

    assert running.returncode == 130
    assert "interrupted; rerun the same command to resume" in err
    assert 1_000 < stopped_at < 10_002
    assert done.summary["resumed_from_line"] == stopped_at
    assert done.summary["accepted"] + done.summary["replayed"] == 10_000
    assert broker_counts(accept_only.data_dir) == (10_000, 10_000, 10_000)


def test_a_full_queue_is_waited_out_and_every_line_accepted(tmp_path: Path) -> None:
    # One processor drains the queue; above 300 queued the service answers 503 + Retry-After.
    server = ServerProcess(tmp_path, max_queue_depth="300", rate_limit_per_s="0").start()
    try:
        key = create_key(server.deployment, "submit,read")
        path = write_csv(tmp_path / "apps.csv", applications(1_500, seed=105))

        done = import_file(server, key, path, "--batch-size", "100", "--concurrency", "2")

        assert done.returncode == 0, done.stderr
        assert (done.summary["accepted"], done.summary["retries"] > 0) == (1_500, True)
        assert metrics_summary(server, key)["totals"]["unavailable_5xx"] > 0  # the 503s
    finally:
        server.stop()
