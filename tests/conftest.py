"""Shared fixtures: a real `loanflow serve` process on a free port, keys made by the CLI."""

from __future__ import annotations

import copy
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

LOANFLOW = [sys.executable, "-m", "loanflow"]

SAMPLE_APPLICATION: dict[str, Any] = {
    "applicant": {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "date_of_birth": "1985-12-10",
        "ssn": "123-45-6789",
        "email": "ada@example.com",
        "phone": "+1 415 555 0100",
        "address": {"line1": "1 Main St", "line2": None, "city": "San Francisco",
                    "state": "CA", "zip": "94105"},
        "employment_status": "employed",
        "employer_name": "Acme",
        "annual_income": 96000.00,
        "monthly_debt_payments": 850.00,
        "monthly_housing_payment": 2100.00,
    },
    "loan": {"amount": 15000.00, "term_months": 36, "purpose": "debt_consolidation"},
    "channel": "web",
    "partner_id": None,
    "external_id": "crm-000123",
    "consent": {"credit_check": True, "terms_version": "2026-01"},
    "submitted_at": "2026-11-25T10:00:00Z",
}


def sample_application(**changes: Any) -> dict[str, Any]:
    """A valid application; `changes` set nested fields, e.g. `loan__amount=5`."""
    app = copy.deepcopy(SAMPLE_APPLICATION)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = app
        for part in parents:
            node = node[part]
        node[last] = value
    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(data_dir: Path, *args: str) -> str:
    """Run `loanflow ARGS` against `data_dir`; its stdout."""
    done = subprocess.run(
        [*LOANFLOW, *args, "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return done.stdout


def create_key(data_dir: Path, scopes: str) -> str:
    return cli(data_dir, "keys", "create", "--scopes", scopes).strip().splitlines()[-1]


class ServerProcess:
    """`loanflow serve` in its own process, on a free port, over a given data dir."""

    def __init__(self, data_dir: Path, **settings: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = settings
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"serve-{self.port}.log"

    def start(self) -> ServerProcess:
        env = {**os.environ, "LOANFLOW_POLL_INTERVAL_S": "0.02"}
        env.update({f"LOANFLOW_{k.upper()}": v for k, v in self.settings.items()})
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*LOANFLOW, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout_s}s: {self.log_path.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def module_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def server(module_data_dir: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(module_data_dir).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def keys(module_data_dir: Path) -> dict[str, str]:
    """Keys with different scopes on the module's data directory."""
    return {
        "submit": create_key(module_data_dir, "submit,read"),
        "read": create_key(module_data_dir, "read"),
        "operate": create_key(module_data_dir, "operate"),
    }


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def wait_for_status(
    client: httpx.Client, key: str, app_id: str, *, final: bool = True, timeout_s: float = 10.0
) -> dict[str, Any]:
    """Poll GET until the application leaves queued/processing (or the timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = client.get(f"/v1/applications/{app_id}", headers=auth(key))
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if not final or body["status"] not in ("queued", "processing"):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{app_id} still {body['status']} after {timeout_s}s")
        time.sleep(0.01)


def auth(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}
