"""Production mode on one host: 2 API processes and 2 worker processes on a throwaway
Redis (AOF) and a fresh PostgreSQL database; exactly once under duplicates and a kill."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api.test_submit import submit
from tests.conftest import (
    Deployment,
    ServerProcess,
    create_key,
    production_deployment,
    sample_application,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def production(tmp_path: Path) -> Iterator[Deployment]:
    with production_deployment(tmp_path) as deployment:
        yield deployment


def submit_with_duplicates(url: str, key: str, count: int, duplicate_ratio: float
                           ) -> dict[str, set[str]]:
    """Submit `count` requests, reusing an earlier key (same body) at `duplicate_ratio`;
    idempotency key -> ids answered with 202 (a set, so a double would show)."""
    rng = random.Random(11)
    plan: list[str] = []
    for _ in range(count):
        if plan and rng.random() < duplicate_ratio:
            plan.append(rng.choice(plan))
        else:
            plan.append(str(uuid.uuid4()))
    local, clients, lock = threading.local(), [], threading.Lock()
    answers: dict[str, set[str]] = {}

    def one(idem: str) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, timeout=30)
            clients.append(local.client)
        body = sample_application(external_id="p-" + idem[:20])
        answer = submit(local.client, key, body, idem=idem)
        assert answer.status_code == 202, answer.text
        with lock:
            answers.setdefault(idem, set()).add(answer.json()["id"])

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, plan))
    for client in clients:
        client.close()
    return answers


def wait_stored(deployment: Deployment, expected: int, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while len(deployment.stored()) < expected:
        assert time.monotonic() < deadline, f"{len(deployment.stored())} of {expected} stored"
        time.sleep(0.2)


def worker_pids(parent: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()
            if b"loanflow\x00worker" in Path(f"/proc/{p}/cmdline").read_bytes()]


def assert_exactly_once(deployment: Deployment, answers: dict[str, set[str]]) -> None:
    assert all(len(ids) == 1 for ids in answers.values()), "one key, two ids"
    rows = deployment.stored()
    assert len(rows) == len(answers)
    assert {(idem, app_id) for app_id, idem, _ in rows} == {
        (idem, next(iter(ids))) for idem, ids in answers.items()}


def test_ten_thousand_with_duplicates_are_stored_exactly_once(production):
    key = create_key(production, "submit,read")
    server = ServerProcess(production, api_workers="2", processors="2").start()
    try:
        answers = submit_with_duplicates(server.url, key, 10_000, 0.05)
        wait_stored(production, len(answers))
    finally:
        server.stop()

    assert 9_000 < len(answers) < 9_900  # about 5% of the requests reused a key
    assert_exactly_once(production, answers)


def test_a_worker_killed_mid_batch_loses_and_doubles_nothing(production):
    key = create_key(production, "submit,read")
    # Accept first with no worker running, so the kill lands in a real backlog.
    accepting = ServerProcess(production, processors="0").start()
    try:
        answers = submit_with_duplicates(accepting.url, key, 3_000, 0.0)
    finally:
        accepting.stop()
    server = ServerProcess(production, api_workers="2", processors="2",
                           visibility_timeout_s="2", batch_size="100").start()
    try:
        assert server.proc is not None
        deadline = time.monotonic() + 30
        while not production.stored():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        victim = worker_pids(server.proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        at_kill = len(production.stored())
        wait_stored(production, len(answers))
    finally:
        server.stop()

    assert at_kill < len(answers)
    assert_exactly_once(production, answers)
