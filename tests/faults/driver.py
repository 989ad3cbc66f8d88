"""The fault suite's own load driver: open-loop submissions that insist on an answer.

A steady `rate_per_s` of synthetic applications (`loanflow.loadgen.synthetic`),
`duplicate_ratio` of them a second submission of an earlier key with the same
body. It behaves as clients are told to (DESIGN "What accepted promises"):
only a 202 is a promise and a 4xx is final; a 5xx, a 409, a 429, a timeout or
a reset connection is *unknown*, so the same body is sent again with the same
Idempotency-Key (after `Retry-After`, to the next API process: the client is
its own load balancer) until a definite answer comes. Every answer is
recorded, so the reconciliation can hold the system to each 202.

The driver runs its own event loop in a thread; a test starts it, breaks
something, and `stop()`s it, which waits until every submission it sent has
its definite answer (or the settle deadline passes: those stay `unresolved`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from loanflow.loadgen.synthetic import generate
from tests.faults.http_client import HostPool, Response, TransportError

PATH = "/v1/applications"
#: Answers that say "not now": the client retries them with the same key.
RETRYABLE = frozenset({409, 429, 500, 502, 503, 504})
#: Exponential backoff after a lost answer (timeout, reset), with jitter.
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 1.0
#: Retry-After is honoured up to this (the API says 1 s).
RETRY_AFTER_CAP_S = 2.0


@dataclass
class Submission:
    """Everything the client sent under one idempotency key, and what it heard back."""

    key: str
    body: bytes
    poison: bool
    #: Ids of every 202 (a set: two different ids would be a double).
    ids: set[str] = field(default_factory=set)
    #: Final refusals (4xx other than 409/429): the key got no application.
    refused: list[int] = field(default_factory=list)
    #: Times the client submitted it (1 + duplicates), and of those still open.
    sends: int = 0
    open_sends: int = 0


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP attempt; times are `time.monotonic()`; status 0 = no answer."""

    sent_at: float
    answered_at: float
    status: int
    replayed: bool = False
    problem: str = ""

    @property
    def latency_s(self) -> float:
        return self.answered_at - self.sent_at


class LoadDriver:
    def __init__(
        self,
        urls: Sequence[str],
        api_key: str,
        *,
        rate_per_s: float = 300.0,
        duplicate_ratio: float = 0.05,
        poison_marker: str = "",
        poison_every: int = 0,
        seed: int = 8,
        request_timeout_s: float = 15.0,
        max_open: int = 500,
        settle_timeout_s: float = 60.0,
        split_body: bool = False,
    ) -> None:
        if not urls or rate_per_s <= 0:
            raise ValueError(f"expected API urls and a rate > 0, got {urls!r}, {rate_per_s}")
        self.urls = list(urls)
        self._api_key = api_key
        self._interval_s = 1.0 / rate_per_s
        self._duplicate_ratio = duplicate_ratio
        self._poison_marker, self._poison_every = poison_marker, poison_every
        self._rng = random.Random(seed)
        self._timeout_s = request_timeout_s
        self._max_open = max_open
        self._settle_timeout_s = settle_timeout_s
        self._split_body = split_body
        self._next_url = itertools.count()
        self.submissions: dict[str, Submission] = {}
        self.answers: list[Answer] = []
        #: Sends the client dropped unsent because `max_open` were still waiting:
        #: never sent, so no part of the ledger (a real client fleet is finite too).
        self.shed = 0
        self._keys: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._pools: list[HostPool] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._open = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._thread_main, name="fault-load", daemon=True)
        self.error: BaseException | None = None

    # --- control, from the test's thread ------------------------------------------------

    def start(self) -> LoadDriver:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the load driver's loop did not start")
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """No new submissions; wait (bounded) until every sent one has a definite answer."""
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(self._settle_timeout_s + 15)
        if self._thread.is_alive():
            raise RuntimeError("the load driver did not settle")
        if self.error is not None:
            raise RuntimeError("the load driver failed") from self.error

    def __enter__(self) -> LoadDriver:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def burst(self, count: int) -> list[tuple[int, str]]:
        """`count` concurrent submissions of one new key; each one's definite (status, id)."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self._burst(count), self._loop)
        return future.result(timeout=self._settle_timeout_s)

    # --- what happened ------------------------------------------------------------------

    def statuses(self, since: float = 0.0, until: float = float("inf")) -> Counter[int]:
        """Answers by status (0 = none) among attempts answered in [since, until)."""
        return Counter(a.status for a in list(self.answers) if since <= a.answered_at < until)

    def unresolved(self) -> list[Submission]:
        return [s for s in self.submissions.values() if s.open_sends]

    def wait_for(self, status: int, *, since: float, timeout_s: float, problem: str = "") -> float:
        """Block until an attempt sent at or after `since` is answered `status` (with the
        problem type ending in `problem`, if given); the time of that answer."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        while time.monotonic() < deadline:
            answers = self.answers[seen:]
            seen += len(answers)
            for a in answers:
                if a.status == status and a.sent_at >= since and a.problem.endswith(problem):
                    return a.answered_at
            time.sleep(0.02)
        raise AssertionError(
            f"no {status} {problem} answer within {timeout_s}s; got {self.statuses(since)}")

    # --- the loop -----------------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self.error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        self._pools = [HostPool(url, timeout_s=self._timeout_s, split_body=self._split_body)
                       for url in self.urls]
        try:
            self._ready.set()
            await self._offer_load(self._stopping)
            if self._tasks:
                _, late = await asyncio.wait(self._tasks, timeout=self._settle_timeout_s)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
        finally:
            for pool in self._pools:
                pool.close()

    async def _offer_load(self, stopping: asyncio.Event) -> None:
        # Open loop: the n-th submission is due at start + n * interval, whatever
        # the answers; a late tick sends at once (no coordinated omission).
        loop = asyncio.get_running_loop()
        started, n = loop.time(), 0
        while not stopping.is_set():
            delay_s = started + n * self._interval_s - loop.time()
            if delay_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), delay_s)
                continue
            n += 1
            if self._open >= self._max_open:
                self.shed += 1
                continue
            self._spawn(self._send(self._next_submission()))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _next_submission(self) -> Submission:
        if self._keys and self._rng.random() < self._duplicate_ratio:
            return self.submissions[self._rng.choice(self._keys)]
        return self._new_submission()

    def _new_submission(self) -> Submission:
        application = generate(self._rng)
        number = len(self._keys) + 1
        poison = bool(self._poison_every) and number % self._poison_every == 0
        if poison:
            application["external_id"] = f"{self._poison_marker}{number}"
        key = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        sub = Submission(key, json.dumps(application).encode(), poison)
        self.submissions[key] = sub
        self._keys.append(key)
        return sub

    async def _burst(self, count: int) -> list[tuple[int, str]]:
        sub = self._new_submission()
        return list(await asyncio.gather(*(self._send(sub) for _ in range(count))))

    async def _send(self, sub: Submission) -> tuple[int, str]:
        """Submit until a definite answer; that answer's (status, id or "").

        Only a definite answer closes the send: one cancelled at the settle
        deadline stays open, and so counts as unresolved."""
        sub.sends += 1
        sub.open_sends += 1
        self._open += 1
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Content-Type": "application/json",
            "Idempotency-Key": sub.key,
        }
        try:
            for attempt in itertools.count(1):
                pool = self._pools[next(self._next_url) % len(self._pools)]
                sent = time.monotonic()
                try:
                    answer = await pool.post(PATH, sub.body, headers)
                except TransportError:  # timeout, reset, refused: the answer is unknown
                    self.answers.append(Answer(sent, time.monotonic(), 0))
                    await asyncio.sleep(_backoff_s(attempt))
                    continue
                status = answer.status
                replayed = answer.headers.get("idempotent-replayed") == "true"
                problem = "" if status == 202 else str(_problem_type(answer))
                self.answers.append(Answer(sent, time.monotonic(), status, replayed, problem))
                if status == 202:
                    app_id = str(json.loads(answer.body)["id"])
                    sub.ids.add(app_id)
                    sub.open_sends -= 1
                    return status, app_id
                if status not in RETRYABLE:
                    sub.refused.append(status)
                    sub.open_sends -= 1
                    return status, ""
                await asyncio.sleep(_retry_after_s(answer, attempt))
            raise AssertionError("unreachable")
        finally:
            self._open -= 1


def _backoff_s(attempt: int) -> float:
    ceiling_s: float = BACKOFF_BASE_S * 2 ** min(attempt, 8)
    return min(BACKOFF_CAP_S, ceiling_s) * random.uniform(0.5, 1.0)


def _retry_after_s(answer: Response, attempt: int) -> float:
    try:
        told = float(answer.headers.get("retry-after", "0"))
    except ValueError:
        told = 0.0
    # Jitter spreads the retries of many clients told the same second.
    return min(RETRY_AFTER_CAP_S, max(told, _backoff_s(attempt))) * random.uniform(0.5, 1.5)


def _problem_type(answer: Response) -> object:
    try:
        return json.loads(answer.body).get("type", "")
    except (ValueError, AttributeError):
        return ""
