"""Traffic for the browser tests: single submissions, and a steady background load."""

from __future__ import annotations

import random
import threading
import time
import uuid
from types import TracebackType
from typing import Any

import httpx

from loanflow.loadgen.synthetic import generate, make_invalid
from tests.conftest import auth, wait_for_status


def submit(base_url: str, key: str, application: dict[str, Any]) -> str:
    """Submit one application; its id (the test fails unless it was accepted)."""
    answer = httpx.post(
        f"{base_url}/v1/applications", json=application, timeout=10,
        headers=auth(key, **{"Idempotency-Key": str(uuid.uuid4())}),
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def processed(
    base_url: str, key: str, application: dict[str, Any], *, timeout_s: float = 10.0
) -> str:
    """Submit one application and wait until it is processed (stored, rejected or
    dead-lettered: then a search finds it); its id. `key` needs submit and read."""
    app_id = submit(base_url, key, application)
    with httpx.Client(base_url=base_url, timeout=10) as client:
        wait_for_status(client, key, app_id, timeout_s=timeout_s)
    return app_id


class SteadyLoad:
    """`rate_per_s` realistic applications a second, `invalid_ratio` of them breaking one
    business rule (so the error log has rejections), in a thread until the block ends."""

    def __init__(
        self, base_url: str, key: str, *, rate_per_s: float = 80, invalid_ratio: float = 0.1
    ) -> None:
        self.base_url, self.key = base_url, key
        self.interval_s = 1 / rate_per_s
        self.invalid_ratio = invalid_ratio
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steady-load", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> SteadyLoad:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        if self.error is not None and kind is None:
            raise AssertionError("the background load failed") from self.error

    def _run(self) -> None:
        rng = random.Random(7)
        try:
            with httpx.Client(base_url=self.base_url, timeout=10) as client:
                next_s = time.monotonic()
                while not self._stop.is_set():
                    app = generate(rng)
                    if rng.random() < self.invalid_ratio:
                        app, _ = make_invalid(app, rng)
                    answer = client.post("/v1/applications", json=app, headers=auth(
                        self.key, **{"Idempotency-Key": str(uuid.uuid4())}))
                    self.accepted += answer.status_code == 202
                    next_s += self.interval_s
                    # Paced by the clock, not by the answers: a steady rate to watch.
                    self._stop.wait(max(0.0, next_s - time.monotonic()))
        except BaseException as exc:  # reported by __exit__ in the test's thread
            self.error = exc
