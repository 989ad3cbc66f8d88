"""The resources one process holds: its backends, PII cipher, product, processors.

Both roles build on it: the API's lifespan and `loanflow worker`. Everything
opened here is closed here, and every task started is awaited on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from loanflow.backends import Backends, make_backends
from loanflow.broker.base import AppendResult, Broker, Submission
from loanflow.broker.ratelimit import RateLimiter
from loanflow.coalesce import Coalescer
from loanflow.domain.product import ProductSource
from loanflow.errors import Unavailable
from loanflow.metrics.parts import Metrics, open_metrics
from loanflow.metrics.series_base import QueueState
from loanflow.pii import PiiCipher, load_cipher
from loanflow.pipeline.backlog import Backlog
from loanflow.pipeline.processor import Processor, warm_up
from loanflow.pipeline.velocity import VelocityCheck, VelocityCounter
from loanflow.process.startup import cannot_start
from loanflow.settings import Settings
from loanflow.store.base import Store

log = logging.getLogger(__name__)

#: How often the queue depth used for backpressure is refreshed.
DEPTH_SAMPLE_INTERVAL_S = 0.25
#: How often idempotency keys past their window are forgotten (embedded; Redis uses TTLs).
JANITOR_INTERVAL_S = 600.0


@dataclass
class Runtime:
    settings: Settings
    broker: Broker
    store: Store
    cipher: PiiCipher
    #: The product configuration, re-read when its file is edited; shared by processors.
    product: ProductSource
    velocity: VelocityCounter
    metrics: Metrics
    #: Opened and closed by the API's lifespan: only API processes take tokens.
    limiter: RateLimiter
    #: Set after an append, so an idle processor in this process starts at once.
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: Last sampled broker depth, for backpressure without a query per request.
    queue_depth: int = 0
    #: Seconds the oldest due envelope has waited, as last sampled (0: none waits).
    queue_lag_s: float = 0.0
    #: Only a process that samples the broker knows the depth to report.
    depth_sampled: bool = False
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    #: Single submissions of concurrent requests, appended together.
    appender: Coalescer[Submission, AppendResult] = field(init=False)

    def __post_init__(self) -> None:
        self.appender = Coalescer(self.broker.append)

    def processor(self, index: int, *, backlog: Backlog | None = None,
                  backlog_only: bool = False) -> Processor:
        s = self.settings
        return Processor(
            self.broker,
            self.store,
            cipher=self.cipher,
            product=self.product,
            velocity=VelocityCheck(
                self.velocity,
                hash_key=self.cipher.subkey("velocity"),
                limit=s.velocity_limit,
                ip_limit=s.velocity_ip_limit,
                window_s=s.velocity_window_s,
            ),
            name=f"{os.uname().nodename}-{os.getpid()}-{index}",
            batch_size=s.batch_size,
            max_attempts=s.max_attempts,
            fail_marker=s.fail_marker,
            crash_marker=s.crash_marker,
            recorder=self.metrics.recorder,
            events=self.metrics.publisher,
            backlog=backlog,
            backlog_only=backlog_only,
        )

    def queue_state(self) -> QueueState | None:
        if not self.depth_sampled:
            return None
        return QueueState(depth=self.queue_depth, lag_s=self.queue_lag_s)

    def start_metrics(self, *, live: bool) -> None:
        """Flush this process's numbers every second; `live` also runs the WebSocket hub."""
        for name, coro in self.metrics.background(self.stop, live=live):
            self._spawn(coro, name)

    def start_processors(self, count: int, *, backlog_loops: int = 0) -> None:
        """`count` loops, and `backlog_loops` beside them that run only while full batches
        wait (see Backlog)."""
        if count <= 0:
            return
        warm_up()
        backlog = Backlog()
        for index in range(count + backlog_loops):
            processor = self.processor(index, backlog=backlog, backlog_only=index >= count)
            self._spawn(processor.run(self.stop, self.wake), f"processor-{index}")

    def start_depth_sampler(self) -> None:
        self.depth_sampled = True
        self._spawn(self._sample_depth(), "depth-sampler")

    def start_janitor(self) -> None:
        self._spawn(self._expire_keys(), "idempotency-janitor")

    def _spawn(self, coro: object, name: str) -> None:
        self.tasks.append(asyncio.create_task(coro, name=name))  # type: ignore[arg-type]

    async def _expire_keys(self) -> None:
        while not self.stop.is_set():
            try:
                expired = await self.broker.expire_idempotency_keys()
                if expired:
                    log.info("forgot %d idempotency keys older than %d s", expired,
                             self.settings.idempotency_window_s)
            except Unavailable as exc:
                log.warning("idempotency key expiry skipped: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), JANITOR_INTERVAL_S)

    async def _sample_depth(self) -> None:
        while not self.stop.is_set():
            try:
                self.queue_depth = await self.broker.depth()
                self.queue_lag_s = await self.broker.oldest_wait_s() or 0.0
            except Unavailable as exc:
                log.warning("queue depth unavailable: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), DEPTH_SAMPLE_INTERVAL_S)


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """Everything a process holds; a start that cannot work raises StartupError, whose
    message names what is missing and how to set it."""
    started = False
    try:
        async with _open_runtime(settings) as runtime:
            started = True
            yield runtime
    except (Unavailable, ValueError) as exc:
        if started:
            raise
        raise cannot_start(exc) from exc


@contextlib.asynccontextmanager
async def _open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    cipher = load_cipher(
        configured=settings.pii_key, data_dir=settings.data_dir, embedded=settings.embedded,
        hash_key=settings.pii_hash_key,
    )
    product = ProductSource.from_file(
        Path(settings.product_file) if settings.product_file else None
    )
    backends = make_backends(settings)
    async with (
        _opened(backends.redis),  # the client the Redis services share: first in, last out
        _services(settings, backends, cipher, product) as runtime,
    ):
        yield runtime


@contextlib.asynccontextmanager
async def _services(
    settings: Settings, backends: Backends, cipher: PiiCipher, product: ProductSource
) -> AsyncIterator[Runtime]:
    broker, store, velocity = backends.broker, backends.store, backends.velocity
    await store.open()
    try:
        await broker.open()
        try:
            runtime: Runtime | None = None

            def probe() -> QueueState | None:
                return runtime.queue_state() if runtime is not None else None

            async with (
                open_metrics(backends.series, backends.events, queue_probe=probe,
                             audit=store) as metrics,
                _opened(velocity),  # after the store: it uses the store's migrated file
            ):
                runtime = Runtime(settings, broker, store, cipher, product, velocity, metrics,
                                  backends.limiter)
                try:
                    yield runtime
                finally:
                    # Inside the metrics block: the flusher's last flush runs before it closes.
                    runtime.stop.set()
                    results = await asyncio.gather(*runtime.tasks, return_exceptions=True)
                    for task, result in zip(runtime.tasks, results, strict=True):
                        if isinstance(result, BaseException):
                            log.error("task %s ended with %r", task.get_name(), result)
        finally:
            await broker.close()
    finally:
        await store.close()


class _Openable(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...


@contextlib.asynccontextmanager
async def _opened(resource: _Openable | None) -> AsyncIterator[None]:
    if resource is None:
        yield
        return
    await resource.open()
    try:
        yield
    finally:
        await resource.close()
