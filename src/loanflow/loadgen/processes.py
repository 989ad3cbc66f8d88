"""`--processes K`: the schedule dealt over K generator processes, their tallies merged.

Each child builds its payloads, opens its connections and reports "ready";
when all are, the parent sets one wall-clock start for all, so request i keeps
its place in the one uniform schedule whichever process sends it. Children
report progress through a shared array and their tally (histograms encoded)
through the queue. Bounded: every wait has a deadline, a child that dies is
noticed within a second, and a child still alive at the end is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue
import time
from collections.abc import Callable
from multiprocessing.context import SpawnProcess
from multiprocessing.sharedctypes import SynchronizedArray
from multiprocessing.synchronize import Event
from typing import Any

import uvloop

from loanflow.loadgen.report import Tally, progress_line
from loanflow.loadgen.share import run_share
from loanflow.loadgen.spec import LoadSpec, Share

#: How long children may take to build their payloads and connect.
READY_TIMEOUT_S = 60.0
#: Between the last "ready" and the first intended send.
START_DELAY_S = 0.2
#: Progress values per child in the shared array: sent, errors, p99 ms.
_SLOTS = 3

#: (child index, "ready" | "done" | "failed", tally wire or error text)
Message = tuple[int, str, Any]


async def run_processes(spec: LoadSpec, *, on_progress: Callable[[str], None] | None) -> Tally:
    ctx = multiprocessing.get_context("spawn")  # no forked event loop or open sockets
    count = spec.processes
    go, start = ctx.Event(), ctx.Value("d", 0.0)
    progress = ctx.Array("d", _SLOTS * count)
    messages: multiprocessing.Queue[Message] = ctx.Queue()
    children = [
        ctx.Process(target=_child, name=f"loadgen-{k}", daemon=True,
                    args=(spec, Share(k, count), go, start, progress, messages))
        for k in range(count)
    ]
    for child in children:
        child.start()
    try:
        await asyncio.to_thread(_gather, messages, children, "ready", READY_TIMEOUT_S)
        start.value = time.time() + START_DELAY_S
        go.set()
        printer = asyncio.create_task(_print(progress, count, on_progress)) if on_progress else None
        try:
            wires = await asyncio.to_thread(_gather, messages, children, "done",
                                            spec.duration_s + spec.grace_s + READY_TIMEOUT_S)
        finally:
            if printer is not None:
                printer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await printer
    finally:
        go.set()  # a child still waiting for the start must not wait for ever
        for child in children:
            child.join(timeout=5)
            if child.is_alive():
                child.kill()
                child.join()
    tally = Tally()
    for wire in wires:
        tally.merge_wire(wire)
    return tally


def _gather(messages: multiprocessing.Queue[Message], children: list[SpawnProcess],
            kind: str, timeout_s: float) -> list[Any]:
    """One `kind` message from every child; raises on a failure, a death or the deadline."""
    deadline = time.monotonic() + timeout_s
    payloads: list[Any] = []
    while len(payloads) < len(children):
        try:
            index, got, payload = messages.get(timeout=1.0)
        except queue.Empty:
            dead = [c.name for c in children if c.exitcode is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"generator processes {dead or 'all'} did not report"
                                   f" {kind!r}") from None
            continue
        if got == "failed":
            raise RuntimeError(f"generator process {index} failed: {payload}")
        payloads.append(payload)
    return payloads


async def _print(progress: SynchronizedArray[float], count: int,
                 on_progress: Callable[[str], None]) -> None:
    began, last_sent, last_s = time.perf_counter(), 0.0, time.perf_counter()
    while True:
        await asyncio.sleep(1.0)
        values, now = progress[:], time.perf_counter()
        sent = sum(values[0::_SLOTS])
        p99s = [v for v in values[2::_SLOTS] if v > 0]
        on_progress(progress_line(
            sent=int(sent), errors=int(sum(values[1::_SLOTS])),
            p99_ms=max(p99s) if p99s else None, elapsed_s=now - began,
            rate_per_s=(sent - last_sent) / (now - last_s)))
        last_sent, last_s = sent, now


def _child(spec: LoadSpec, share: Share, go: Event, start: Any,
           progress: SynchronizedArray[float], messages: multiprocessing.Queue[Message]) -> None:
    def start_at() -> float:
        messages.put((share.index, "ready", None))
        if not go.wait(READY_TIMEOUT_S) or not start.value:
            raise TimeoutError("no start signal from the parent")
        # Wall clock is what all processes share; turn it into our perf_counter time.
        return time.perf_counter() + (float(start.value) - time.time())

    def each_second(tally: Tally, elapsed_s: float) -> None:
        at = share.index * _SLOTS
        progress[at], progress[at + 1] = tally.sent, tally.errors
        progress[at + 2] = tally.http.percentile_ms(99.0) or 0.0

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            tally = runner.run(run_share(spec, share, start_at=start_at,
                                         each_second=each_second))
    except BaseException as exc:  # reported to the parent, which raises it there
        messages.put((share.index, "failed", repr(exc)))
        raise
    messages.put((share.index, "done", tally.to_wire()))
