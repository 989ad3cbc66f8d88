"""Open-loop load at a fixed arrival rate, with no coordinated omission.

Request i is intended at `t0 + i / rate`; its latency runs from that instant to
the answer, so a server that stalls is charged for every request queued behind
the stall, not just the one it was serving. `connections` workers share one
keep-alive pool of as many connections: each takes the next request index,
builds the body, waits for its intended time and sends it. When every worker is
busy the schedule slips and the slip shows up in the latency.

Bounded in count and time: at most `rate * duration` requests, and everything
still open at `duration + grace` is cancelled and counted as unanswered.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import math
import random
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import msgspec

from loanflow.loadgen.report import Tally, progress_line, summarize
from loanflow.loadgen.synthetic import BREAKERS, generate, make_invalid

SUBMIT_PATH = "/v1/applications"
BATCH_PATH = "/v1/applications/batch"
SUMMARY_PATH = "/v1/metrics/summary"
#: The batch endpoint's item limit (api/batch.py MAX_ITEMS).
MAX_BATCH = 1000
#: Earlier (idempotency key, body) pairs kept for --duplicate-ratio to resend.
DUPLICATE_POOL = 10_000
#: The service settles a second's metrics this long after it ends (metrics/aggregate.py).
METRICS_SETTLE_S = 1.5
#: The widest summary window the service serves (api/metrics.py MAX_WINDOW_S).
MAX_WINDOW_S = 300

_encode = msgspec.json.Encoder().encode


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoadSpec:
    """One run. `batch_size` 0 posts single applications; `get_path` GETs that path instead."""

    url: str
    key: str = dataclasses.field(repr=False)
    rate_per_s: float
    duration_s: float
    invalid_ratio: float = 0.0
    duplicate_ratio: float = 0.0
    batch_size: int = 0
    connections: int = 64
    seed: int | None = None
    get_path: str | None = None
    grace_s: float = 10.0
    #: Read `GET /v1/metrics/summary` afterwards; waits up to this long for it to settle.
    end_to_end_wait_s: float | None = 5.0

    def __post_init__(self) -> None:
        checks = (
            ("rate_per_s", self.rate_per_s > 0, "> 0"),
            ("duration_s", self.duration_s > 0, "> 0"),
            ("invalid_ratio", 0 <= self.invalid_ratio <= 1, "in 0..1"),
            ("duplicate_ratio", 0 <= self.duplicate_ratio <= 1, "in 0..1"),
            ("batch_size", 0 <= self.batch_size <= MAX_BATCH, f"in 0..{MAX_BATCH}"),
            ("connections", self.connections >= 1, ">= 1"),
            ("grace_s", self.grace_s >= 0, ">= 0"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"expected {name} {expected}, got {getattr(self, name)!r}")
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"expected an http(s):// URL, got {self.url!r}")

    @property
    def planned(self) -> int:
        return int(self.rate_per_s * self.duration_s)


class _Driver:
    def __init__(self, spec: LoadSpec, clients: list[httpx.AsyncClient]) -> None:
        self.spec, self.clients = spec, clients
        self.rng = random.Random(spec.seed)
        self.tally = Tally()
        # Seeded bodies, but keys unique per run: a rerun must not collide with the last.
        self.key_prefix = f"lg-{secrets.token_hex(4)}-"
        self.pool: list[tuple[str, bytes]] = []
        self.next_index = 0
        self.interval_s = 1 / spec.rate_per_s
        self.t0 = self.deadline = 0.0

    async def run(self, on_progress: Callable[[str], None] | None) -> None:
        if self.spec.get_path is None:
            _warm_up()
        self.t0 = time.perf_counter() + 0.05  # a moment for every worker to start
        self.deadline = self.t0 + self.spec.duration_s + self.spec.grace_s
        workers = [asyncio.create_task(self._worker(client)) for client in self.clients]
        ticker = asyncio.create_task(self._progress(on_progress)) if on_progress else None
        try:
            async with asyncio.timeout(self.deadline - time.perf_counter()):
                await asyncio.gather(*workers)
        except TimeoutError:
            pass  # what was still in flight is the unanswered remainder
        finally:
            for task in [*workers, *([ticker] if ticker else [])]:
                task.cancel()
            await asyncio.gather(*workers, *([ticker] if ticker else []),
                                 return_exceptions=True)

    def _take(self) -> int | None:
        i = self.next_index
        if i >= self.spec.planned or time.perf_counter() >= self.deadline:
            return None
        self.next_index = i + 1
        return i

    async def _worker(self, client: httpx.AsyncClient) -> None:
        spec, tally, perf = self.spec, self.tally, time.perf_counter
        while (i := self._take()) is not None:
            request = self._build(i)
            intended = self.t0 + i * self.interval_s
            delay = intended - perf()
            if delay > 0:
                await asyncio.sleep(delay)
            sent_at = perf()
            tally.sent += 1
            tally.items_sent += max(spec.batch_size, 1) if spec.get_path is None else 0
            tally.first_send_s = min(tally.first_send_s, sent_at)
            tally.last_send_s = sent_at
            tally.send_lag.record_s(sent_at - intended)
            try:
                response = await self._send(client, request)
            except httpx.TransportError as exc:
                tally.transport_errors[type(exc).__name__] += 1
                continue
            tally.http.record_s(perf() - intended)
            tally.by_status[response.status_code] += 1
            self._note(request, response)

    def _build(self, i: int) -> list[tuple[str, bytes]]:
        """The (idempotency key, application JSON) pairs of request i."""
        if self.spec.get_path is not None:
            return []
        return [self._item(f"{self.key_prefix}{i}-{n}")
                for n in range(max(self.spec.batch_size, 1))]

    def _item(self, key: str) -> tuple[str, bytes]:
        rng = self.rng
        if self.pool and rng.random() < self.spec.duplicate_ratio:
            return rng.choice(self.pool)
        application = generate(rng)
        if rng.random() < self.spec.invalid_ratio:
            application, _ = make_invalid(application, rng)  # breaks a rule: still a 202
        return key, _encode(application)

    async def _send(
        self, client: httpx.AsyncClient, items: list[tuple[str, bytes]]
    ) -> httpx.Response:
        spec = self.spec
        if spec.get_path is not None:
            return await client.get(spec.get_path)
        if not spec.batch_size:
            [(key, body)] = items
            return await client.post(SUBMIT_PATH, content=body,
                                     headers={"Idempotency-Key": key})
        batch = [{"idempotency_key": key, "application": msgspec.Raw(body)}
                 for key, body in items]
        return await client.post(BATCH_PATH, content=_encode(batch))

    def _note(self, items: list[tuple[str, bytes]], response: httpx.Response) -> None:
        """Counts replays and batch outcomes; keeps accepted items for duplicates."""
        tally, code = self.tally, response.status_code
        if code == 202:
            tally.items_accepted += 1
            tally.replayed += response.headers.get("idempotent-replayed") == "true"
            self._keep(items)
        elif code == 200 and self.spec.batch_size:
            try:
                answer = msgspec.json.decode(response.content, type=_BatchAnswer)
            except msgspec.DecodeError:
                tally.transport_errors["BadBatchAnswer"] += 1
                return
            tally.items_accepted += answer.accepted
            tally.items_refused += answer.refused
            tally.replayed += sum(1 for item in answer.items if item.replayed)
            self._keep([items[item.index] for item in answer.items
                        if item.status == "queued" and 0 <= item.index < len(items)])
        elif code >= 400 and self.spec.get_path is None:
            tally.items_refused += len(items)

    def _keep(self, items: list[tuple[str, bytes]]) -> None:
        for item in items:
            if len(self.pool) < DUPLICATE_POOL:
                self.pool.append(item)
            else:
                self.pool[self.rng.randrange(DUPLICATE_POOL)] = item

    async def _progress(self, on_progress: Callable[[str], None]) -> None:
        last_sent, last_s = 0, time.perf_counter()
        while True:
            await asyncio.sleep(1.0)
            now = time.perf_counter()
            rate = (self.tally.sent - last_sent) / (now - last_s)
            last_sent, last_s = self.tally.sent, now
            on_progress(progress_line(self.tally, elapsed_s=now - self.t0, rate_per_s=rate))


def _warm_up() -> None:
    """Build the generator's lookup tables now (~1 s), not inside the first requests."""
    rng = random.Random(0)
    app = generate(rng)
    today = dt.date.today()
    for breaker in BREAKERS:
        breaker(make_invalid(app, rng)[0], rng, today)


class _BatchItem(msgspec.Struct):
    index: int
    status: str
    replayed: bool = False


class _BatchAnswer(msgspec.Struct):
    accepted: int
    refused: int
    items: list[_BatchItem]


class _Second(msgspec.Struct):
    t: int


class _Summary(msgspec.Struct):
    latency_ms: dict[str, dict[str, float | None]]
    latest_second: _Second


async def read_end_to_end(
    client: httpx.AsyncClient, *, started_wall_s: float, ended_wall_s: float, wait_s: float,
) -> dict[str, Any]:
    """The service's end-to-end latency over the run's seconds, once they have settled.

    It covers every submission the service stored in those seconds, not only ours.
    """
    deadline = time.monotonic() + wait_s
    first, last = math.floor(started_wall_s), math.floor(ended_wall_s)
    while True:
        settled = math.floor(time.time() - METRICS_SETTLE_S)
        window_s = min(max(settled - first + 1, 1), MAX_WINDOW_S)
        try:
            response = await client.get(SUMMARY_PATH, params={"window_s": window_s})
        except httpx.TransportError as exc:
            return {"note": f"{SUMMARY_PATH} failed: {type(exc).__name__}"}
        if response.status_code == 403:
            return {"note": "403: the key lacks the read scope"}
        if response.status_code != 200:
            return {"note": f"{SUMMARY_PATH} answered {response.status_code}"}
        summary = msgspec.json.decode(response.content, type=_Summary)
        if summary.latest_second.t >= last or time.monotonic() >= deadline:
            return {"window_s": window_s, "complete": summary.latest_second.t >= last,
                    "latency_ms": summary.latency_ms.get("end_to_end")}
        await asyncio.sleep(0.2)


async def run(spec: LoadSpec, *, on_progress: Callable[[str], None] | None = None
              ) -> dict[str, Any]:
    """Offer the load `spec` describes; the summary (see report.summarize)."""
    # One single-connection client per worker: httpx's pool scans every connection on
    # each request, which at 64 connections cut throughput by 2.5x on one core.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    headers = {"Authorization": f"Bearer {spec.key}", "Content-Type": "application/json"}
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(
                base_url=spec.url, headers=headers, limits=limits,
                timeout=httpx.Timeout(spec.grace_s or None)))
            for _ in range(min(spec.connections, max(spec.planned, 1)))
        ]
        client = clients[0]
        driver = _Driver(spec, clients)
        started_wall_s = time.time()
        await driver.run(on_progress)
        end_to_end: dict[str, Any] = {"note": "not requested"}
        if spec.get_path is None and spec.end_to_end_wait_s is not None:
            end_to_end = await read_end_to_end(
                client, started_wall_s=started_wall_s, ended_wall_s=time.time(),
                wait_s=spec.end_to_end_wait_s)
    target = spec.get_path or (BATCH_PATH if spec.batch_size else SUBMIT_PATH)
    return summarize(driver.tally, target=spec.url.rstrip("/") + target,
                     planned=spec.planned, rate_per_s=spec.rate_per_s,
                     duration_s=spec.duration_s, batch_size=spec.batch_size,
                     end_to_end=end_to_end)
