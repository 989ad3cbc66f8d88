"""close_at_shutdown (patches/loop_shutdown.py): the loop that was running closes what
it was given when it shuts down; these fail when asyncio or uvloop stop doing so."""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from loanflow.patches.loop_shutdown import close_at_shutdown

#: The versions whose internals the patch was read against; add one only after reading it.
CHECKED = {"uvloop": ("0.23.0",)}
RUNS: dict[str, Callable[[Coroutine[Any, Any, None]], None]] = {
    "asyncio": asyncio.run,
    "uvloop": uvloop.run,
}


def test_the_installed_uvloop_is_a_version_the_patch_was_checked_against() -> None:
    assert importlib.metadata.version("uvloop") in CHECKED["uvloop"]


@pytest.mark.parametrize("loop", sorted(RUNS))
def test_the_loop_closes_it_when_it_shuts_down(loop: str) -> None:
    closed: list[str] = []

    async def close() -> None:
        closed.append(loop)

    async def main() -> None:
        close_at_shutdown(close)
        await asyncio.sleep(0)
        assert closed == []

    RUNS[loop](main())

    assert closed == [loop]


@pytest.mark.parametrize("loop", sorted(RUNS))
def test_closed_early_it_is_closed_once(loop: str) -> None:
    closed: list[str] = []

    async def close() -> None:
        closed.append(loop)

    async def main() -> None:
        await close_at_shutdown(close).aclose()
        assert closed == [loop]

    RUNS[loop](main())

    assert closed == [loop]
