"""A 202 survives SIGKILL of the server: after a restart each accepted application
is processed exactly once."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api.test_submit import submit
from tests.conftest import ServerProcess, create_key, sample_application

pytestmark = pytest.mark.slow


def submit_many(url: str, key: str, count: int) -> dict[str, str]:
    """Submit `count` applications concurrently; idempotency key -> id of every 202."""

    local, clients = threading.local(), []

    def one(i: int) -> tuple[str, httpx.Response]:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, timeout=10)
            clients.append(local.client)
        idem = str(uuid.uuid4())
        body = sample_application(external_id=f"crash-{i}")
        return idem, submit(local.client, key, body, idem=idem)

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(one, range(count)))
    for client in clients:
        client.close()
    assert all(a.status_code == 202 for _, a in answers), {a.status_code for _, a in answers}
    return {idem: a.json()["id"] for idem, a in answers}


def stored_rows(data_dir: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(data_dir / "store.db") as db:
        return db.execute("SELECT id, idempotency_key, status FROM applications").fetchall()


def queued_count(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "broker.db") as db:
        return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])


def wait_until_drained(data_dir: Path, expected: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while queued_count(data_dir) > 0 or len(stored_rows(data_dir)) < expected:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"after {timeout_s}s: {queued_count(data_dir)} queued, "
                f"{len(stored_rows(data_dir))} of {expected} stored"
            )
        time.sleep(0.05)


def assert_each_processed_once(data_dir: Path, accepted: dict[str, str]) -> None:
    rows = stored_rows(data_dir)
    assert len(rows) == len(accepted)
    assert {(idem, app_id) for app_id, idem, _ in rows} == set(accepted.items())
    assert {status for _, _, status in rows} == {"stored"}


def test_accepted_applications_survive_a_kill_before_processing(tmp_path):
    key = create_key(tmp_path, "submit,read")
    accepting = ServerProcess(tmp_path, processors="0").start()
    accepted = submit_many(accepting.url, key, 200)

    accepting.kill()
    assert queued_count(tmp_path) == 200 and stored_rows(tmp_path) == []
    processing = ServerProcess(tmp_path).start()
    try:
        wait_until_drained(tmp_path, 200)
    finally:
        processing.stop()

    assert_each_processed_once(tmp_path, accepted)


def test_kill_in_the_middle_of_processing_loses_and_doubles_nothing(tmp_path):
    key = create_key(tmp_path, "submit,read")
    settings = {"visibility_timeout_s": "1", "batch_size": "50"}
    first = ServerProcess(tmp_path, processors="0", **settings).start()
    accepted = submit_many(first.url, key, 1000)
    first.kill()

    # Processing starts on restart; kill it again once part of the backlog is stored.
    second = ServerProcess(tmp_path, **settings).start()
    deadline = time.monotonic() + 20
    while not stored_rows(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.005)
    second.kill()
    partly = len(stored_rows(tmp_path))
    third = ServerProcess(tmp_path, **settings).start()
    try:
        wait_until_drained(tmp_path, 1000)
    finally:
        third.stop()

    assert 0 < partly < 1000, "the kill should land in the middle of the backlog"
    assert_each_processed_once(tmp_path, accepted)
