"""Close something when the running event loop shuts down, through the loop's
async-generator hooks.

Relies on asyncio (CPython 3.11) and uvloop 0.23.0 registering an async generator
with the running loop at its first step (the `sys.set_asyncgen_hooks` firstiter
hook) and `aclose()`-ing those still suspended in `shutdown_asyncgens`, which
`asyncio.run`, `asyncio.Runner` and `uvloop.run` call; and on the awaitable of an
async generator's first `asend(None)`, stepped by hand outside any task, running it
to its first `yield`. tests/patches/test_loop_shutdown.py checks both loops.

Why: redis.asyncio connections belong to the loop that made them, and a loop may
end (`asyncio.run` in tests and tools) with no one to close them; the loop then
closes them itself, without a task kept for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable


def close_at_shutdown(close: Callable[[], Awaitable[None]]) -> AsyncGenerator[None, None]:
    """Registered with the running loop, which awaits `close()` when it shuts down;
    `aclose()` the result to close earlier (then the loop has nothing left to do)."""
    closer = _close_after_yield(close)
    with contextlib.suppress(StopIteration):  # the first step ends at `yield`
        closer.asend(None).send(None)
    return closer


async def _close_after_yield(close: Callable[[], Awaitable[None]]) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await close()
