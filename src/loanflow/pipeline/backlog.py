"""Whether a backlog waits: the last batch a processor took was full.

A worker process's extra processor loops run only then. One loop alone spends
much of its time waiting on the store's commit and the broker's ack; another
assesses the next batch meanwhile (in an API process the extras would take the
API's time instead: embedded mode runs none). While work arrives slower than one loop
takes it, the extras wait here, and batches stay whole (two loops taking turns
would halve them and pay each batch's round trips twice).
"""

from __future__ import annotations

import asyncio


class Backlog:
    """Shared by the processor loops of one process, on its event loop."""

    def __init__(self) -> None:
        self._full = asyncio.Event()

    def saw(self, taken: int, batch_size: int) -> None:
        """After a reserve: `taken` of at most `batch_size` applications."""
        if taken >= batch_size:
            self._full.set()
        else:
            self._full.clear()

    def waiting(self) -> bool:
        return self._full.is_set()

    async def wait(self) -> None:
        await self._full.wait()
