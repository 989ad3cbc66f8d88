"""The `WS /v1/live` endpoint body: the hub's messages to one WebSocket (auth is the caller's).

Two directions run at once: a reader that notices the client leaving (and
ignores anything it sends), and the writer draining the subscription. A
send that takes longer than `SEND_TIMEOUT_S` (a client that stopped reading
with a full TCP window) gives the client up; a subscriber the hub dropped
gets close code 1013 "try again later", a server shutting down 1001, so the
dashboard knows to reconnect by itself.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.websockets import WebSocket, WebSocketDisconnect

from loanflow.metrics.hub import LiveHub, Subscription

#: A send to one client may take this long before the client is given up.
SEND_TIMEOUT_S = 5.0
#: WebSocket close codes (RFC 6455 and the IANA registry).
CLOSE_GOING_AWAY = 1001
CLOSE_TRY_AGAIN_LATER = 1013

# How a send to a departed client fails: Starlette's WebSocketDisconnect, the server's
# ClientDisconnected (an OSError), or RuntimeError once the socket is closed.
_GONE = (WebSocketDisconnect, OSError, RuntimeError)


async def live_endpoint(
    websocket: WebSocket, hub: LiveHub, *, send_timeout_s: float = SEND_TIMEOUT_S
) -> None:
    """Accept, then send the messages of a new subscription until either side ends."""
    await websocket.accept()
    subscription = hub.subscribe()
    gone = asyncio.Event()
    reader = asyncio.create_task(_read_until_gone(websocket, subscription, gone))
    try:
        async for message in subscription:
            async with asyncio.timeout(send_timeout_s):
                await websocket.send_text(message)
    except TimeoutError:
        subscription.dropped = True  # it stopped reading: treat it as the hub would
    except _GONE:
        gone.set()
    finally:
        subscription.close()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    if not gone.is_set():
        code = CLOSE_TRY_AGAIN_LATER if subscription.dropped else CLOSE_GOING_AWAY
        with contextlib.suppress(*_GONE):
            await websocket.close(code)


async def _read_until_gone(
    websocket: WebSocket, subscription: Subscription, gone: asyncio.Event
) -> None:
    # A failing receive is the same departure, seen from this side.
    with contextlib.suppress(*_GONE):
        # The client has nothing to say; whatever it sends is ignored.
        while (await websocket.receive())["type"] != "websocket.disconnect":
            continue
    gone.set()
    subscription.close()
