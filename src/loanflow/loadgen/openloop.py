"""The open-loop engine: N keep-alive connections, one request in flight on each.

Request j is intended at `first_s + j * interval_s`. A timer sends every due
request to an idle connection; a connection that finishes a response takes
the next due request at once, else goes idle. When every connection is busy,
due requests wait (nothing is dropped or skipped) and their latency, measured
from the intended time, includes that wait: a stalled server is charged for
every request queued behind the stall (no coordinated omission).

Callbacks, not coroutines: an asyncio Protocol per connection and one timer,
so a request costs one write, one read and a few dict updates (~15 µs).
Bounded: `planned` requests at most, and at `deadline` whatever is in flight
is abandoned and reported as unanswered.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as ssl_module
import time
from collections.abc import Callable
from typing import cast

import msgspec

from loanflow.loadgen.payloads import Item, Payloads
from loanflow.loadgen.report import Tally
from loanflow.loadgen.wire import ProtocolError, Response, parse_response

#: How often timeouts and the deadline are checked.
HOUSEKEEPING_S = 0.2
#: uvloop's timers count whole milliseconds.
TIMER_RESOLUTION_S = 0.001
#: Pause between attempts to reopen a connection the server closed.
RECONNECT_PAUSE_S = 0.05


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight (no pipelining)."""

    def __init__(self, engine: OpenLoop) -> None:
        self.engine = engine
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.busy = False
        #: Why we cut the connection while a request was in flight (counted on loss).
        self.failure: str | None = None
        self.intended_s = self.sent_s = 0.0
        self.request = b""
        self.items: list[Item] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, request: bytes, intended_s: float, now_s: float) -> None:
        assert self.transport is not None
        self.busy, self.request = True, request
        self.intended_s, self.sent_s = intended_s, now_s
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        try:
            parsed = parse_response(buf)
            if parsed is not None and (not self.busy or parsed[1] != len(buf)):
                raise ProtocolError("expected one response per request, got unsolicited bytes")
        except ProtocolError:
            self.cut("ProtocolError")
            return
        if parsed is None:
            self.buf = buf
            return
        self.buf = b""
        self.busy = False
        self.engine.on_response(self, parsed[0])

    def connection_lost(self, exc: Exception | None) -> None:
        self.engine.on_lost(self, exc)

    def cut(self, failure: str) -> None:
        """Abort the connection; an in-flight request is counted as `failure`."""
        if not self.busy:
            self.engine.tally.transport_errors[failure] += 1
        self.failure = failure
        if self.transport is not None:
            self.transport.abort()


class OpenLoop:
    """One share of a run: `planned` requests at `interval_s` apart from `first_s`."""

    def __init__(
        self, payloads: Payloads, *, host: str, port: int, ssl: ssl_module.SSLContext | None,
        connections: int, planned: int,
        interval_s: float, batch_size: int, request_timeout_s: float,
        global_index: Callable[[int], int] = lambda j: j,
    ) -> None:
        self.payloads, self.host, self.port, self.ssl = payloads, host, port, ssl
        self.pool_size = max(1, min(connections, planned))
        self.planned, self.interval_s = planned, interval_s
        self.batch_size, self.request_timeout_s = batch_size, request_timeout_s
        self.global_index = global_index
        self.get_request = payloads.get_request
        self.tally = Tally()
        self.t0 = self.first_s = 0.0
        self.deadline_s = float("inf")
        self.next = 0  # the next request (local index) to send
        self.in_flight = 0
        #: Set by run(): before it, a reopened connection only waits in the pool.
        self.started = False
        self.finished = False
        self.idle: list[_Connection] = []
        self.connections: set[_Connection] = set()
        self.timer: asyncio.TimerHandle | None = None
        self.reconnects: set[asyncio.Task[None]] = set()
        self.done: asyncio.Future[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def open(self) -> None:
        """Open the pool before the clock starts; a refused first connect is raised."""
        self.loop = asyncio.get_running_loop()
        self.done = self.loop.create_future()
        try:
            for _ in range(self.pool_size):
                self.idle.append(await self._connect())
        except BaseException:
            self.finished = True
            for conn in self.idle:
                if conn.transport is not None:
                    conn.transport.abort()
            raise

    async def _connect(self) -> _Connection:
        assert self.loop is not None
        _, conn = await self.loop.create_connection(
            lambda: _Connection(self), self.host, self.port, ssl=self.ssl,
            server_hostname=self.host if self.ssl else None)
        self.tally.connects += 1
        self.connections.add(conn)
        return conn

    async def run(
        self, *, t0: float, first_s: float, deadline_s: float,
        each_second: Callable[[Tally, float], None] | None = None,
    ) -> Tally:
        """Send from `first_s` (perf_counter time) until done or `deadline_s`."""
        assert self.done is not None, "open() first"
        self.t0, self.first_s, self.deadline_s = t0, first_s, deadline_s
        self.started = True
        self._arm()
        keeper = asyncio.create_task(self._housekeeping(each_second))
        try:
            await self.done
        finally:
            self.finished = True
            keeper.cancel()
            for task in [keeper, *self.reconnects]:
                task.cancel()
            await asyncio.gather(keeper, *self.reconnects, return_exceptions=True)
            if self.timer is not None:
                self.timer.cancel()
            for conn in list(self.connections):
                if conn.transport is not None:
                    conn.transport.abort()  # in flight now: unanswered, not an error
        return self.tally

    # -- sending ---------------------------------------------------------------------

    def _due(self, now_s: float) -> int:
        """How many requests are due by `now_s` (intended at or before it)."""
        if now_s < self.first_s:
            return 0
        return min(self.planned, int((now_s - self.first_s) / self.interval_s) + 1)

    def _arm(self) -> None:
        if self.timer is None and self.next < self.planned and self.loop is not None:
            delay_s = self.first_s + self.next * self.interval_s - time.perf_counter()
            # Never sooner than the timer resolution: a shorter delay rounds to zero and
            # the loop would spin. The lag this adds (< 1 ms) is measured, as any other.
            self.timer = self.loop.call_later(max(delay_s, TIMER_RESOLUTION_S), self._tick)

    def _tick(self) -> None:
        self.timer = None
        now_s = time.perf_counter()
        if now_s >= self.deadline_s:
            return
        due, idle = self._due(now_s), self.idle
        while idle and self.next < due:
            self._send(idle.pop(), now_s)
        if idle:
            self._arm()

    def _send(self, conn: _Connection, now_s: float) -> None:
        j = self.next
        self.next = j + 1
        i = self.global_index(j)
        intended_s = self.first_s + j * self.interval_s
        tally = self.tally
        if self.get_request is not None:
            request = self.get_request
        elif self.batch_size:
            request, conn.items = self.payloads.batch(i)
            tally.items_sent += self.batch_size
        else:
            request = self.payloads.single(i)
            tally.items_sent += 1
        conn.send(request, intended_s, now_s)
        self.in_flight += 1
        tally.sent += 1
        if tally.sent == 1:
            tally.first_send_s = now_s
        tally.last_send_s = now_s
        tally.send_lag.record_s(now_s - intended_s)
        tally.second(int(now_s - self.t0)).sent += 1

    def _next_on(self, conn: _Connection, now_s: float) -> None:
        if self.started and self.next < self._due(now_s) and now_s < self.deadline_s:
            self._send(conn, now_s)
            return
        self.idle.append(conn)
        self._arm()
        self._maybe_done()

    def _maybe_done(self) -> None:
        if self.next >= self.planned and self.in_flight == 0 and self.done is not None \
                and not self.done.done():
            self.done.set_result(None)

    # -- answers ---------------------------------------------------------------------

    def on_response(self, conn: _Connection, response: Response) -> None:
        now_s = time.perf_counter()
        self.in_flight -= 1
        tally, latency_s, code = self.tally, now_s - conn.intended_s, response.status
        tally.http.record_s(latency_s)
        second = tally.second(int(now_s - self.t0))
        second.answered += 1
        second.http.record_s(latency_s)
        tally.by_status[code] += 1
        if code == 202:
            tally.items_accepted += 1
            if response.replayed:
                tally.replayed += 1
            if self.payloads.duplicate_ratio and conn.items is None:
                self.payloads.keep(conn.request)
        elif code == 200 and conn.items is not None:
            self._note_batch(conn.items, response.body)
        elif code >= 300:
            second.errors += 1
            if self.get_request is None:
                tally.items_refused += len(conn.items) if conn.items is not None else 1
        conn.items = None
        if response.close and conn.transport is not None:
            conn.transport.close()  # on_lost opens another
        else:
            self._next_on(conn, now_s)
        self._maybe_done()

    def _note_batch(self, items: list[Item], body: bytes) -> None:
        tally = self.tally
        try:
            answer = msgspec.json.decode(body, type=_BatchAnswer)
        except msgspec.DecodeError:
            tally.transport_errors["BadBatchAnswer"] += 1
            return
        tally.items_accepted += answer.accepted
        tally.items_refused += answer.refused
        tally.replayed += sum(1 for item in answer.items if item.replayed)
        if self.payloads.duplicate_ratio:
            self.payloads.keep_items([items[a.index] for a in answer.items
                                      if a.status == "queued" and 0 <= a.index < len(items)])

    def on_lost(self, conn: _Connection, exc: Exception | None) -> None:
        self.connections.discard(conn)
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)
        if self.finished:
            return
        if conn.busy:
            conn.busy = False
            self.in_flight -= 1
            name = conn.failure or (type(exc).__name__ if exc else "Closed")
            self.tally.transport_errors[name] += 1
            self.tally.second(int(time.perf_counter() - self.t0)).errors += 1
        if self.next < self.planned:
            task = asyncio.ensure_future(self._reconnect())
            self.reconnects.add(task)
            task.add_done_callback(self.reconnects.discard)
        self._maybe_done()

    async def _reconnect(self) -> None:
        while time.perf_counter() < self.deadline_s and not self.finished:
            try:
                conn = await self._connect()
            except OSError:
                self.tally.connect_errors += 1
                await asyncio.sleep(RECONNECT_PAUSE_S)
                continue
            self._next_on(conn, time.perf_counter())
            return

    async def _housekeeping(self, each_second: Callable[[Tally, float], None] | None) -> None:
        assert self.done is not None
        next_second = self.t0 + 1.0
        while not self.done.done():
            await asyncio.sleep(HOUSEKEEPING_S)
            now_s = time.perf_counter()
            if now_s >= self.deadline_s:
                self.done.set_result(None)
                return
            for conn in list(self.connections):
                if conn.busy and conn.failure is None \
                        and now_s - conn.sent_s > self.request_timeout_s:
                    conn.cut("Timeout")
            if each_second is not None and now_s >= next_second:
                next_second += 1.0
                each_second(self.tally, now_s - self.t0)


class _BatchItem(msgspec.Struct):
    index: int
    status: str
    replayed: bool = False


class _BatchAnswer(msgspec.Struct):
    accepted: int
    refused: int
    items: list[_BatchItem]
