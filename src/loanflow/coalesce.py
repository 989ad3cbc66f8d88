"""`Coalescer`: single calls from concurrent requests, sent to a backend together.

A broker call has a fixed cost (a Redis round trip and its client-side work, a
hand-off to the SQLite writer thread) that dwarfs its cost per envelope. So requests
that arrive while earlier appends are in flight wait together and go in the next
call, as a database's group commit does; under light load a call holds one
submission and costs no added wait.

Each request's 202 still waits for its own append's durable reply. When a call
fails, every request in it gets the error (a 503: the client retries with the
same key, and an append that had landed answers as a replay). A request whose
client went away does not withdraw its submission: it is sent all the same,
and a retry finds it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

#: Calls in flight at once; arrivals beyond wait and join the next call.
MAX_IN_FLIGHT = 4
#: Submissions per call at most (a Redis pipeline, one SQLite transaction).
MAX_BATCH = 256

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


class Coalescer(Generic[ItemT, ResultT]):
    """`append(item)` answers `call(items)[i]` for its item, the call shared with others."""

    def __init__(
        self,
        call: Callable[[Sequence[ItemT]], Awaitable[list[ResultT]]],
        *,
        max_in_flight: int = MAX_IN_FLIGHT,
        max_batch: int = MAX_BATCH,
    ) -> None:
        if max_in_flight < 1 or max_batch < 1:
            raise ValueError(
                f"expected max_in_flight and max_batch >= 1, got {max_in_flight}, {max_batch}"
            )
        self._call = call
        self._max_in_flight, self._max_batch = max_in_flight, max_batch
        self._waiting: list[tuple[ItemT, asyncio.Future[ResultT]]] = []
        self._in_flight = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def append(self, item: ItemT) -> ResultT:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[ResultT] = loop.create_future()
        # Read by whoever still waits; marked retrieved for one that was cancelled.
        answer.add_done_callback(_retrieve)
        self._waiting.append((item, answer))
        if not self._scheduled:
            # After the current loop turn: requests parsed in the same turn join this call.
            self._scheduled = True
            loop.call_soon(self._send_what_waits)
        # No shield needed: a cancelled request cancels only its own answer; the call its
        # neighbours share is a task of its own, and it skips answers already done.
        return await answer

    def _send_what_waits(self) -> None:
        self._scheduled = False
        while self._waiting and self._in_flight < self._max_in_flight:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[ItemT, asyncio.Future[ResultT]]]) -> None:
        try:
            results = await self._call([item for item, _ in batch])
        except asyncio.CancelledError:  # shutting down
            for _, answer in batch:
                answer.cancel()
            raise
        except Exception as exc:  # every request of the call gets the error
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
        else:
            for (_, answer), result in zip(batch, results, strict=True):
                if not answer.done():
                    answer.set_result(result)
        finally:
            self._in_flight -= 1
            if self._waiting and not self._scheduled:
                self._send_what_waits()


def _retrieve(answer: asyncio.Future[ResultT]) -> None:
    if not answer.cancelled():
        answer.exception()
