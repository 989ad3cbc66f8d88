"""Running `loanflow import` as a user does, and reading what the service holds."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import LOANFLOW, Deployment, ServerProcess, auth


@dataclasses.dataclass
class Imported:
    returncode: int
    summary: dict[str, Any]
    stderr: str


def import_file(server: ServerProcess, key: str, path: Path, *args: str,
                timeout_s: float = 60) -> Imported:
    """`loanflow import PATH --json`; the parsed summary ({} when none was printed)."""
    done = subprocess.run(
        [*LOANFLOW, "import", str(path), "--url", server.url, "--key", key, "--json", *args],
        capture_output=True, text=True, timeout=timeout_s,
    )
    summary = json.loads(done.stdout) if done.stdout.strip() else {}
    return Imported(done.returncode, summary, done.stderr)


def report_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def stored_keys(deployment: Deployment, prefix: str) -> dict[str, str]:
    """Idempotency key -> status of stored applications whose key starts with `prefix`."""
    return {key: status for _, key, status in deployment.stored() if key.startswith(prefix)}


def wait_until(check: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout_s}s")
        time.sleep(0.05)


def wait_stored(deployment: Deployment, prefix: str, count: int, *, timeout_s: float = 30
                ) -> dict[str, str]:
    """The stored applications with keys starting with `prefix`, once there are `count`."""
    wait_until(lambda: len(stored_keys(deployment, prefix)) >= count, timeout_s=timeout_s,
               what=f"{count} stored under {prefix}")
    return stored_keys(deployment, prefix)


def metrics_summary(server: ServerProcess, key: str) -> dict[str, Any]:
    answer = httpx.get(server.url + "/v1/metrics/summary", headers=auth(key), timeout=10)
    assert answer.status_code == 200, answer.text
    summary: dict[str, Any] = answer.json()
    return summary


def broker_counts(data_dir: Path) -> tuple[int, int, int]:
    """(queued messages, distinct application ids, idempotency keys) in the embedded broker,
    read-only: what `sqlite3 -readonly broker.db` shows an operator."""
    with contextlib.closing(
            sqlite3.connect(f"file:{data_dir / 'broker.db'}?mode=ro", uri=True)) as db:
        messages, distinct = db.execute(
            "SELECT count(*), count(DISTINCT application_id) FROM messages").fetchone()
        [keys] = db.execute("SELECT count(*) FROM idempotency_keys").fetchone()
    return messages, distinct, keys
