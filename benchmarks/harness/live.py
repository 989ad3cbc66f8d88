"""Dashboards as the service sees them: WebSockets on `/v1/live` that read every message."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

_T = TypeVar("_T")
#: Bounded wait for a dashboard to connect.
CONNECT_TIMEOUT_S = 10.0


async def with_dashboards(url: str, key: str, count: int, work: Awaitable[_T]
                          ) -> tuple[_T, list[int]]:
    """Run `work` while `count` dashboards read the live feed; (its result, messages each).

    Authenticated with a Bearer key of read scope, as a script would; the browser
    uses its session cookie, which the server checks the same way.
    """
    ws_url = url.replace("http://", "ws://", 1) + "/v1/live"
    headers = {"Authorization": f"Bearer {key}"}
    received = [0] * count
    sockets: list[ClientConnection] = []
    try:
        for _ in range(count):
            sockets.append(await connect(ws_url, additional_headers=headers,
                                         open_timeout=CONNECT_TIMEOUT_S, max_size=2**22))
        readers = [asyncio.create_task(_read(ws, received, i)) for i, ws in enumerate(sockets)]
        try:
            result = await work
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
    finally:
        for ws in sockets:
            with contextlib.suppress(WebSocketException, OSError):
                await ws.close()
    return result, received


async def _read(ws: ClientConnection, received: list[int], index: int) -> None:
    with contextlib.suppress(WebSocketException):
        async for _ in ws:
            received[index] += 1
